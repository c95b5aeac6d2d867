"""Metadata stores chosen by URL scheme: ``sqlite:///PATH`` (default) or ``spanner://...``."""

from __future__ import annotations

from pipeline.errors import ConfigError
from pipeline.metadata.base import JobRecord, MetadataStore
from pipeline.metadata.sqlite import SqliteMetadataStore


def open_metadata_store(url: str) -> MetadataStore:
    """The metadata store configured by ``url``."""
    if url.startswith("sqlite:///"):
        return SqliteMetadataStore.from_url(url)
    if url.startswith("spanner://"):
        from pipeline.metadata.spanner import SpannerMetadataStore  # Spanner SDK only if used

        return SpannerMetadataStore.from_url(url)
    raise ConfigError(f"IMGPIPE_METADATA_URL: unsupported URL {url!r}; use sqlite:///PATH or "
                      "spanner://projects/P/instances/I/databases/D")


__all__ = ["JobRecord", "MetadataStore", "SqliteMetadataStore", "open_metadata_store"]
