"""The object store contract: sources are read and outputs written through it."""

from __future__ import annotations

import posixpath
import re
from abc import ABC, abstractmethod
from pathlib import Path

from pipeline.errors import ImageRejected, SourceNotAllowed

_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9._=-]+$")


def check_prefix(prefix: str) -> str:
    """A listing prefix: a checked key followed by '/' (or '' for everything)."""
    return "" if not prefix.strip("/") else check_key(prefix.strip("/")) + "/"


def check_key(key: str) -> str:
    """Reject keys that could escape the store (``..``, absolute, odd characters)."""
    if not key or key.startswith("/") or "\\" in key:
        raise SourceNotAllowed(f"object key {key!r} must be a relative path", "bad_key")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _KEY_SEGMENT.match(part):
            raise SourceNotAllowed(f"object key {key!r} has an invalid segment {part!r}",
                                   "bad_key")
    return posixpath.join(*parts)


class ObjectStore(ABC):
    """Bytes by URI. Writes to the same key overwrite, so retries never duplicate."""

    scheme: str

    @abstractmethod
    def locate(self, uri: str) -> object:
        """Where ``uri`` lives in the backend (path, object name, key), or
        SourceNotAllowed if it is outside this store."""

    def owns(self, uri: str) -> bool:
        """True if ``uri`` lies inside this store (used to allow-list sources)."""
        try:
            self.locate(uri)
        except SourceNotAllowed:
            return False
        return True

    def key_of(self, uri: str) -> str | None:
        """The key ``uri`` names inside this store, judged from the URI alone (a clean
        key, or None if it lies outside or names no clean key): whose object it is
        depends on it (pipeline/jobs/sources.py)."""
        start = self.uri_for("x")[:-1]
        if not uri.startswith(start):
            return None
        try:
            return check_key(uri[len(start):])
        except SourceNotAllowed:
            return None

    def claims(self, uri: str) -> bool:
        """Like ``owns`` but from the URI alone, without touching the backend: the
        cheap admission check. Reads always go through ``locate`` again."""
        return self.owns(uri)

    @abstractmethod
    def get(self, uri: str, max_bytes: int) -> bytes:
        """Object bytes; SourceNotFound if absent, ImageRejected('too_large') if bigger
        than ``max_bytes``."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Write (or overwrite) ``key`` atomically and return its URI."""

    def put_new_file(self, key: str, path: Path, content_type: str) -> str:
        """Store a local file at ``key`` unless an object is already there; the same
        content again is fine, other content is refused (claim checks never clobber)."""
        uri = self.uri_for(key)
        data = path.read_bytes()
        if self.exists(uri):
            try:
                same = self.get(uri, len(data)) == data
            except ImageRejected as exc:  # the stored object is larger: not the same
                if exc.code != "source_too_large":
                    raise
                same = False
            if not same:
                raise SourceNotAllowed("a source for this job_id is already stored with "
                                       "other content", "source_exists")
            return uri
        return self.put(key, data, content_type)

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Keys of the objects under ``prefix`` (a key prefix ending in '/'), sorted."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the object at ``key``; False if there was none."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """True if an object is stored at ``uri``."""

    @abstractmethod
    def uri_for(self, key: str) -> str:
        """The URI ``key`` has (or would have) in this store."""

    def remove_stale_temp(self, max_age: float, now: float | None = None) -> int:
        """Remove what crashed writes left behind (only this store's own temp names,
        only older than ``max_age`` seconds, so a write in progress is never touched);
        returns how many were removed. Stores whose writes are atomic uploads (gs://,
        memory://) leave nothing behind."""
        return 0

    def close(self) -> None:
        """Release clients and connections."""
