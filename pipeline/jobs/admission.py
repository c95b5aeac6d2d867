"""Ingest-time checks: everything about a job that can be judged without its pixels."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache

from pipeline.errors import InvalidRequest
from pipeline.jobs.rules import Rules, default_rules
from pipeline.jobs.sources import SourcePolicy
from pipeline.models import JobRequest, parse_job_request, tenant_of
from pipeline.ops import Chain, Limits, compile_variants
from pipeline.tenancy import ANYONE, NotAuthorized, Principal


@dataclass(frozen=True)
class AdmissionPolicy:
    limits: Limits
    max_variants: int
    sources: SourcePolicy
    tenant_priorities: dict[str, str] = field(default_factory=dict)
    allowed_tenants: frozenset[str] = frozenset()
    allowed_formats: frozenset[str] = frozenset({"jpeg", "png", "webp", "avif", "jxl", "gif"})
    rules: Rules = field(default_factory=default_rules)

    def admit(self, raw: bytes | None, sender: Principal = ANYONE
              ) -> tuple[JobRequest, dict[str, Chain]]:
        """Parse, normalise and validate one raw event sent by ``sender``;
        PermanentError says why not (a request naming no tenant is the sender's)."""
        return self.admit_request(parse_job_request(raw, sender.tenant), sender)

    def admit_request(self, request: JobRequest, sender: Principal = ANYONE
                      ) -> tuple[JobRequest, dict[str, Chain]]:
        """Check a parsed request and its sender's rights. The returned request always
        has a priority: its own, else its tenant's rule, else normal (or, if the sender
        may not use that, the first of normal, low, high it may)."""
        if not sender.may_act_for(request.tenant):
            raise NotAuthorized(f"this token may not submit jobs for tenant "
                                f"{request.tenant!r}", "tenant_not_allowed")
        if request.preset is not None and not request.variants:
            request = replace(request, variants=self.rules.preset(request.preset))
        chains = self.validate(request)
        if request.priority is not None:
            if request.priority not in sender.priorities:
                raise NotAuthorized(f"this token may not use priority {request.priority!r} "
                                    f"(allowed: {', '.join(sorted(sender.priorities))})",
                                    "priority_not_allowed")
            return request, chains
        priority = self.tenant_priorities.get(request.tenant, "normal")
        if priority not in sender.priorities:
            priority = next(p for p in ("normal", "low", "high") if p in sender.priorities)
        return request.with_priority(priority), chains

    def validate(self, request: JobRequest) -> dict[str, Chain]:
        """Check tenant, ops, limits, formats and the source URI of a parsed request."""
        if self.allowed_tenants and request.tenant not in self.allowed_tenants:
            raise InvalidRequest(f"tenant {request.tenant!r} is not accepted here",
                                 "tenant_not_allowed")
        chains = compiled_variants(request.variants, self.limits, self.max_variants)
        for name, chain in chains.items():
            if chain.encode_args["format"] not in self.allowed_formats:
                raise InvalidRequest(f"variant {name!r}: format {chain.encode_args['format']} "
                                     f"is not allowed here (allowed: "
                                     f"{', '.join(sorted(self.allowed_formats))})",
                                     "format_not_allowed")
        tenant = tenant_of(request.job_id)  # the qualified id is the job's owner
        self.sources.check(request.source, tenant)
        for chain in chains.values():
            for uri in chain.source_uris():
                self.sources.check(uri, tenant)
        return chains


def compiled_variants(variants: object, limits: Limits, max_variants: int
                      ) -> dict[str, Chain]:
    """compile_variants, remembered: clients send the same few variant sets over and
    over, and compiling is the largest part of admitting a request. (Chains are
    immutable; only successful compiles are kept, errors are raised every time.)"""
    try:
        key = json.dumps(variants, separators=(",", ":"))  # order kept: it orders outputs
    except (TypeError, ValueError):
        return compile_variants(variants, limits, max_variants)
    return dict(_compiled(key, limits, max_variants))


@lru_cache(maxsize=512)
def _compiled(key: str, limits: Limits, max_variants: int) -> dict[str, Chain]:
    return compile_variants(json.loads(key), limits, max_variants)
