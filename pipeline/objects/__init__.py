"""Object stores chosen by URL scheme: ``file://DIR`` (default) or ``gs://BUCKET/PREFIX``."""

from __future__ import annotations

from pipeline.errors import ConfigError
from pipeline.objects.base import ObjectStore, check_key
from pipeline.objects.local import LocalObjectStore
from pipeline.objects.memory import MemoryObjectStore


def open_object_store(url: str, retry_seconds: float = 30.0) -> ObjectStore:
    """The object store configured by ``url`` (``retry_seconds``: client-side retries of
    transient errors, where the backend has them)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "file":
        return LocalObjectStore.from_url(url)
    if scheme == "gs":
        from pipeline.objects.gcs import GcsObjectStore  # imports the GCS SDK only if used

        return GcsObjectStore.from_url(url, retry_seconds)
    if scheme == "memory":
        return MemoryObjectStore(url.split("://", 1)[1].strip("/") or "default")
    raise ConfigError(f"IMGPIPE_OBJECT_STORE: unsupported URL {url!r}; use file://DIR or gs://BUCKET/PREFIX")


__all__ = ["LocalObjectStore", "MemoryObjectStore", "ObjectStore", "check_key", "open_object_store"]
