"""Which source URIs a job may read, and reading them (the claim check's other half)."""

from __future__ import annotations

from pipeline.errors import SourceNotAllowed
from pipeline.objects import LocalObjectStore, ObjectStore


def _root_store(root: str) -> ObjectStore:
    if root.startswith("gs://"):
        from pipeline.objects.gcs import GcsObjectStore  # the GCS client only if used

        return GcsObjectStore.from_url(root)
    return LocalObjectStore.from_url(root) if root.startswith("file://") \
        else LocalObjectStore(root)


class SourcePolicy:
    """Sources must live in the object store or under an explicitly allowed root.

    Nothing is ever fetched from an arbitrary URL: http(s) and unknown schemes are
    refused, and file:// paths are resolved (symlinks included) before the check.
    """

    def __init__(self, store: ObjectStore, extra_roots: list[str] | tuple[str, ...] = ()):
        self.stores: list[ObjectStore] = [store]
        # A root is a folder or its file:// URI (what IMGPIPE_SOURCE_ROOTS documents).
        self.stores += [_root_store(root) for root in extra_roots if root]

    @classmethod
    def from_settings(cls, store: ObjectStore, source_roots: str) -> SourcePolicy:
        return cls(store, [r.strip() for r in source_roots.split(",") if r.strip()])

    def store_for(self, uri: str, *, resolve: bool = True) -> ObjectStore:
        """The store that holds ``uri`` or SourceNotAllowed (``resolve=False``: judged
        from the URI alone, see ObjectStore.claims)."""
        if not isinstance(uri, str) or "://" not in uri:
            raise SourceNotAllowed(f"source {uri!r} is not a URI", "bad_source")
        for store in self.stores:
            if uri.startswith(store.scheme + "://") and (
                    store.owns(uri) if resolve else store.claims(uri)):
                return store
        raise SourceNotAllowed(f"source {uri!r} is outside the allowed stores and roots",
                               "source_not_allowed")

    def check(self, uri: str) -> None:
        """Admission check, from the URI alone; ``read`` checks again, symlinks resolved."""
        self.store_for(uri, resolve=False)

    def read(self, uri: str, max_bytes: int) -> bytes:
        """The source's bytes; the store's ``get`` resolves the URI (symlinks included)
        and refuses it if it escapes, so it is resolved once, not twice."""
        return self.store_for(uri, resolve=False).get(uri, max_bytes)
