"""Which source URIs a job may read, and reading them (the claim check's other half).

Sources are owned. In the object store a job's tenant may read only its own area, the
uploads and outputs of its own jobs:

    sources/dt=<day>/tenant=<tenant>/<job>/...   outputs/dt=<day>/tenant=<tenant>/<job>/...
    (tenant "default": sources/dt=<day>/<job>/... and outputs/dt=<day>/<job>/...)

Everything else in the store (other tenants' areas, the lake) is ``source_not_allowed``,
for sources and overlay images alike. Outside the store a job may read the roots granted
to every tenant (IMGPIPE_SOURCE_ROOTS) and those granted to its own tenant (the tokens
file's ``source_roots``, and the bucket/prefix of each notification route of the tenant).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.errors import SourceNotAllowed
from pipeline.models import DEFAULT_TENANT
from pipeline.objects import LocalObjectStore, ObjectStore

#: The top-level folders of the store whose job areas belong to tenants.
OWNED_AREAS = ("sources", "outputs")


def _root_store(root: str) -> ObjectStore:
    if root.startswith("gs://"):
        from pipeline.objects.gcs import GcsObjectStore  # the GCS client only if used

        return GcsObjectStore.from_url(root)
    return LocalObjectStore.from_url(root) if root.startswith("file://") \
        else LocalObjectStore(root)


def owned_by(key: str, tenant: str) -> bool:
    """True if the store key ``key`` lies in the area of one of ``tenant``'s jobs."""
    parts = key.split("/")
    if parts[0] not in OWNED_AREAS or len(parts) < 4 or not parts[1].startswith("dt="):
        return False
    if tenant == DEFAULT_TENANT:
        return not parts[2].startswith("tenant=")
    return parts[2] == f"tenant={tenant}" and len(parts) >= 5


def split_roots(text: str) -> list[str]:
    """A comma-separated list of roots, blanks dropped."""
    return [root.strip() for root in text.split(",") if root.strip()]


class SourcePolicy:
    """What a job of each tenant may read: its own area of the object store, the shared
    roots and its tenant's granted roots.

    Nothing is ever fetched from an arbitrary URL: http(s) and unknown schemes are
    refused, and file:// paths are resolved (symlinks included) before the read.
    """

    def __init__(self, store: ObjectStore, extra_roots: Iterable[str] = (),
                 tenant_roots: Mapping[str, Iterable[str]] | None = None,
                 tenant_prefixes: Mapping[str, Iterable[str]] | None = None) -> None:
        self.store = store
        # A root is a folder or its file:// URI (what IMGPIPE_SOURCE_ROOTS documents).
        self.shared: list[ObjectStore] = [_root_store(root) for root in extra_roots if root]
        # Per tenant: (URI prefix, store) pairs. A root is a folder (its store decides);
        # a prefix (a route's gs://BUCKET/PREFIX) is matched as the route matches names,
        # by text, and read through its bucket's store.
        self.granted: dict[str, list[tuple[str, ObjectStore]]] = {}
        for tenant, roots in (tenant_roots or {}).items():
            self.granted.setdefault(tenant, []).extend(
                ("", _root_store(root)) for root in roots if root)
        buckets: dict[str, ObjectStore] = {}
        for tenant, prefixes in (tenant_prefixes or {}).items():
            for prefix in prefixes:
                bucket = "gs://" + prefix.removeprefix("gs://").split("/", 1)[0]
                if bucket not in buckets:
                    buckets[bucket] = _root_store(bucket)
                self.granted.setdefault(tenant, []).append((prefix, buckets[bucket]))

    @classmethod
    def from_settings(cls, store: ObjectStore, source_roots: str,
                      tenant_roots: Mapping[str, Iterable[str]] | None = None,
                      tenant_prefixes: Mapping[str, Iterable[str]] | None = None
                      ) -> SourcePolicy:
        return cls(store, split_roots(source_roots), tenant_roots, tenant_prefixes)

    def store_for(self, uri: str, tenant: str, *, resolve: bool = True) -> ObjectStore:
        """The store that holds ``uri`` for a job of ``tenant``, or SourceNotAllowed
        (``resolve=False``: judged from the URI alone, see ObjectStore.claims)."""
        if not isinstance(uri, str) or "://" not in uri:
            raise SourceNotAllowed(f"source {uri!r} is not a URI", "bad_source")
        if uri.startswith(self.store.scheme + "://") and self.store.claims(uri):
            # The object store first, even where a root also covers it: its areas are
            # owned, whatever else grants a parent folder or bucket.
            key = self.store.key_of(uri)
            if key is not None and owned_by(key, tenant):
                return self.store
            raise SourceNotAllowed(f"source {uri!r} is not in tenant {tenant!r}'s uploads "
                                   "or outputs", "source_not_allowed")
        for prefix, store in (*(("", s) for s in self.shared), *self.granted.get(tenant, ())):
            if uri.startswith(prefix) and uri.startswith(store.scheme + "://") and (
                    store.owns(uri) if resolve else store.claims(uri)):
                return store
        raise SourceNotAllowed(f"source {uri!r} is outside the stores and roots tenant "
                               f"{tenant!r} may read", "source_not_allowed")

    def check(self, uri: str, tenant: str) -> None:
        """Admission check, from the URI alone; ``read`` checks again, symlinks resolved."""
        self.store_for(uri, tenant, resolve=False)

    def read(self, uri: str, tenant: str, max_bytes: int) -> bytes:
        """The source's bytes for a job of ``tenant``; the store's ``get`` resolves the
        URI (symlinks included) and refuses it if it escapes, so it is resolved once."""
        return self.store_for(uri, tenant, resolve=False).get(uri, max_bytes)
