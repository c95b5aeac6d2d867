"""``gs://BUCKET/PREFIX`` object store on Google Cloud Storage.

Credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
workload identity, gcloud). With STORAGE_EMULATOR_HOST set (fake-gcs-server), anonymous
credentials are used. SDK exceptions are converted here, once: transient ones become
StorageUnavailable (the job is retried), the rest permanent errors.
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
from functools import cached_property
from pathlib import Path

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage

from pipeline.errors import ImageRejected, SourceNotAllowed, SourceNotFound, StorageUnavailable
from pipeline.objects.base import ObjectStore, check_key, check_prefix

TRANSIENT = (gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway,
             gexc.ServiceUnavailable, gexc.GatewayTimeout, ConnectionError, TimeoutError,
             requests.exceptions.ConnectionError, requests.exceptions.Timeout)
#: Objects larger than this are uploaded in resumable chunks.
CHUNK_SIZE = 8 * 1024 * 1024


def make_client() -> storage.Client:
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "imgpipe-local"),
                              credentials=AnonymousCredentials())
    return storage.Client()


def _convert(exc: Exception, uri: str, writing: bool = False) -> Exception:
    if isinstance(exc, gexc.RetryError):  # the client's retry deadline ran out
        return StorageUnavailable(f"GCS unavailable for {uri} (gave up retrying: "
                                  f"{exc.cause})")
    if isinstance(exc, gexc.NotFound) and (writing or "bucket" in str(exc).lower()):
        bucket = uri.removeprefix("gs://").split("/", 1)[0]
        return StorageUnavailable(f"bucket gs://{bucket} does not exist: create it "
                                  f"(`gcloud storage buckets create gs://{bucket}`) or fix "
                                  "IMGPIPE_OBJECT_STORE", "bucket_not_found")
    if isinstance(exc, gexc.NotFound):
        return SourceNotFound(f"no object at {uri}")
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return SourceNotAllowed(f"access to {uri} denied: {exc.message}", "access_denied")
    if isinstance(exc, TRANSIENT):
        return StorageUnavailable(f"GCS unavailable for {uri}: {exc}")
    return StorageUnavailable(f"GCS error for {uri}: {exc}")


class GcsObjectStore(ObjectStore):
    scheme = "gs"

    def __init__(self, bucket: str, prefix: str = "", client: storage.Client | None = None,
                 retry_seconds: float = 30.0):
        # Transient errors are retried inside the client for up to retry_seconds before
        # the job itself goes to the retry topic.
        self.retry = Retry(initial=0.2, maximum=5.0, multiplier=2.0, timeout=retry_seconds,
                           predicate=lambda exc: isinstance(exc, TRANSIENT))
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> storage.Client:
        """Made on first use: a store that only judges URIs (a granted source root at
        admission) needs no credentials."""
        return make_client()

    @cached_property
    def bucket(self) -> storage.Bucket:
        return self.client.bucket(self.bucket_name)

    @classmethod
    def from_url(cls, url: str, retry_seconds: float = 30.0) -> GcsObjectStore:
        bucket, _, prefix = url.removeprefix("gs://").partition("/")
        if not bucket:
            raise SourceNotAllowed(f"bad GCS URL {url!r}: expected gs://BUCKET[/PREFIX]",
                                   "bad_source")
        return cls(bucket, prefix, retry_seconds=retry_seconds)

    def _name(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def locate(self, uri: str) -> str:
        start = f"gs://{self.bucket_name}/"
        if not uri.startswith(start):
            raise SourceNotAllowed(f"{uri!r} is not in bucket {self.bucket_name}",
                                   "path_outside_root")
        name = uri[len(start):]
        if posixpath.normpath(name) != name or name.startswith("/") or "/../" in f"/{name}/":
            raise SourceNotAllowed(f"{uri!r} is not a normalised object name",
                                   "path_outside_root")
        if self.prefix and not name.startswith(self.prefix + "/"):
            raise SourceNotAllowed(f"{uri!r} is outside gs://{self.bucket_name}/{self.prefix}",
                                   "path_outside_root")
        return name


    def uri_for(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self._name(key)}"

    def get(self, uri: str, max_bytes: int) -> bytes:
        blob = self.bucket.blob(self.locate(uri))
        try:
            blob.reload(retry=self.retry)
            if blob.size is not None and blob.size > max_bytes:
                raise ImageRejected(f"source is {blob.size} bytes, more than the {max_bytes} "
                                    "byte limit", "source_too_large")
            # Pinning the generation read by reload() makes the download consistent.
            return blob.download_as_bytes(retry=self.retry, if_generation_match=blob.generation)
        except (gexc.GoogleAPICallError, gexc.RetryError, *TRANSIENT) as exc:
            raise _convert(exc, uri) from exc

    def put(self, key: str, data: bytes, content_type: str) -> str:
        blob = self.bucket.blob(self._name(key), chunk_size=CHUNK_SIZE
                                if len(data) > CHUNK_SIZE else None)
        uri = self.uri_for(key)
        try:
            # Output keys are deterministic and their content is a function of the job,
            # so retrying an unconditional overwrite is safe.
            blob.upload_from_string(data, content_type=content_type, retry=self.retry)
        except (gexc.GoogleAPICallError, gexc.RetryError, *TRANSIENT) as exc:
            raise _convert(exc, uri, writing=True) from exc
        return uri

    def put_new_file(self, key: str, path: Path, content_type: str) -> str:
        """Stream a local file to ``key`` if no object is there yet (generation 0
        precondition): a claim-check upload never replaces another job's source."""
        blob = self.bucket.blob(self._name(key), chunk_size=CHUNK_SIZE)
        uri = self.uri_for(key)
        try:
            blob.upload_from_filename(str(path), content_type=content_type,
                                      if_generation_match=0, retry=self.retry)
        except gexc.PreconditionFailed:
            blob.reload()
            local_md5 = base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()
            if blob.md5_hash != local_md5:
                raise SourceNotAllowed(f"{uri} already exists with other content",
                                       "source_exists") from None
        except (gexc.GoogleAPICallError, gexc.RetryError, *TRANSIENT) as exc:
            raise _convert(exc, uri, writing=True) from exc
        return uri

    def list_keys(self, prefix: str) -> list[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            blobs = self.client.list_blobs(self.bucket_name, prefix=start + check_prefix(prefix),
                                           retry=self.retry)
            return sorted(blob.name[len(start):] for blob in blobs)
        except (gexc.GoogleAPICallError, gexc.RetryError, *TRANSIENT) as exc:
            raise _convert(exc, self.uri_for(prefix.strip("/") or ".")) from exc

    def delete(self, key: str) -> bool:
        try:
            self.bucket.blob(self._name(key)).delete(retry=self.retry)
        except gexc.NotFound:
            return False
        except (gexc.GoogleAPICallError, gexc.RetryError, *TRANSIENT) as exc:
            raise _convert(exc, self.uri_for(key)) from exc
        return True

    def exists(self, uri: str) -> bool:
        try:
            return self.bucket.blob(self.locate(uri)).exists(retry=self.retry)
        except (gexc.GoogleAPICallError, gexc.RetryError, *TRANSIENT) as exc:
            raise _convert(exc, uri) from exc

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
