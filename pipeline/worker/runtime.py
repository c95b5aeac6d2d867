"""The services a worker process uses, built once from settings on first use."""

from __future__ import annotations

import asyncio
from functools import cached_property

from pipeline.authority import Authority
from pipeline.group import GroupKey, PeerHosts
from pipeline.jobs.admission import AdmissionPolicy
from pipeline.jobs.budget import MemoryGate, default_budget
from pipeline.jobs.engine import Engine, EngineLimits
from pipeline.jobs.rules import Rules, load_rules
from pipeline.jobs.sources import SourcePolicy, split_roots
from pipeline.jobs.storage_jobs import StorageJobs
from pipeline.metadata import MetadataStore, open_metadata_store
from pipeline.objects import ObjectStore, open_object_store
from pipeline.ops import Limits
from pipeline.settings import Settings
from pipeline.tenancy import Tenancy
from pipeline.worker.executor import BoundedExecutor
from pipeline.worker.scheduling import PriorityExecutor


class Runtime:
    """Lazily built object store, metadata store, engine and executor."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def object_store(self) -> ObjectStore:
        return open_object_store(self.settings.object_store,
                                 self.settings.storage_retry_seconds)

    @cached_property
    def metadata(self) -> MetadataStore:
        return open_metadata_store(self.settings.metadata_url)

    @cached_property
    def sources(self) -> SourcePolicy:
        """What each tenant's jobs may read: its own uploads and outputs, the shared
        roots, its tokens' roots and its notification routes' buckets."""
        routed: dict[str, list[str]] = {}
        for route in self.rules.routes:
            routed.setdefault(route.tenant, []).append(f"gs://{route.bucket}/{route.prefix}")
        return SourcePolicy.from_settings(self.object_store, self.settings.source_roots,
                                          self.tenancy.source_roots(), routed)

    @cached_property
    def tenancy(self) -> Tenancy:
        return Tenancy.from_settings(self.settings.api_token, self.settings.api_tokens_file)

    @cached_property
    def group(self) -> GroupKey:
        """The key workers attest their records and sign peer requests with."""
        return GroupKey.derive(self.settings.group_key, self.tenancy.digests())

    @cached_property
    def authority(self) -> Authority:
        """Judges whose authority an ingest event carries (pipeline/authority.py)."""
        return Authority(self.tenancy, self.group)

    @cached_property
    def memory_gate(self) -> MemoryGate:
        budget = self.settings.memory_budget_mb << 20 or default_budget()
        return MemoryGate(budget)

    @cached_property
    def isolated_slots(self) -> asyncio.Semaphore:
        """Isolated (long, expensive) jobs hold at most all image threads but one, so
        one thread always serves ordinary jobs: a high-priority job never waits behind
        expensive ones."""
        return asyncio.Semaphore(max(1, self.settings.image_thread_count - 1))

    @cached_property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(max_output_pixels=s.max_output_pixels, max_frames=s.max_frames,
                      max_animation_pixels=s.max_animation_pixels)

    @cached_property
    def admission(self) -> AdmissionPolicy:
        s = self.settings
        return AdmissionPolicy(self.limits, s.max_variants, self.sources,
                               s.tenant_priority_map, s.allowed_tenant_set,
                               s.allowed_format_set, self.rules)

    @cached_property
    def rules(self) -> Rules:
        """Presets and storage-event routes (IMGPIPE_RULES_FILE); a route grants its
        tenant's jobs the bucket/prefix it watches (``sources``)."""
        return load_rules(self.settings.rules_file, self.limits, self.settings.max_variants)

    @cached_property
    def storage_jobs(self) -> StorageJobs:
        """Bucket notifications -> jobs, never for objects the pipeline writes itself."""
        store, lake = self.object_store, self.settings.lake_prefix.strip("/")
        return StorageJobs(self.rules, tuple(store.uri_for(f"{prefix}/x")[:-1] for prefix in
                                             ("outputs", "sources", lake) if prefix))

    @cached_property
    def engine(self) -> Engine:
        limits = EngineLimits(self.settings.max_source_bytes, self.settings.max_source_pixels,
                              self.limits)
        return Engine(self.object_store, self.sources, limits)

    @cached_property
    def executor(self) -> PriorityExecutor:
        s = self.settings
        return PriorityExecutor(s.image_thread_count, {"normal": s.normal_share,
                                                       "low": s.low_share})

    @cached_property
    def io(self) -> BoundedExecutor:
        return BoundedExecutor(self.settings.io_threads)

    @cached_property
    def peer_hosts(self) -> PeerHosts:
        """Where the API may ask other workers for their part (IMGPIPE_PEER_HOSTS)."""
        return PeerHosts(self.settings.peer_hosts)

    def private_folders(self) -> list[str]:
        """This machine's folders that answers to clients must not name (longest first)."""
        import os

        folders = {os.path.abspath(self.settings.data_dir)}
        root = getattr(self.object_store, "root", None)
        if root is not None:
            folders.add(str(root))
        granted = [root for roots in self.tenancy.source_roots().values() for root in roots]
        for uri in [*split_roots(self.settings.source_roots), *granted]:
            if uri.startswith("gs://"):
                continue
            folders.add(os.path.abspath(uri.removeprefix("file://")))
        return sorted(folders, key=len, reverse=True)

    def check(self) -> None:
        """Open every store once so a misconfiguration stops the worker at start."""
        self.object_store.owns(self.object_store.uri_for("healthcheck"))
        self.metadata.check_schema()
        self.storage_jobs  # noqa: B018  (loads and checks the rules file)

    def close(self) -> None:
        for pool in ("executor", "io"):
            if pool in self.__dict__:
                self.__dict__[pool].shutdown()
        if "metadata" in self.__dict__:
            self.metadata.close()
        if "object_store" in self.__dict__:
            self.object_store.close()
