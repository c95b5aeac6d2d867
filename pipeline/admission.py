"""Ingest-time checks: everything about a job that can be judged without its pixels."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.models import JobRequest, parse_job_request
from pipeline.ops import Chain, Limits, compile_variants
from pipeline.sources import SourcePolicy


@dataclass(frozen=True)
class AdmissionPolicy:
    limits: Limits
    max_variants: int
    sources: SourcePolicy

    def admit(self, raw: bytes | None) -> tuple[JobRequest, dict[str, Chain]]:
        """Parse and validate one raw ingest event; PermanentError says why not."""
        request = parse_job_request(raw)
        return request, self.validate(request)

    def validate(self, request: JobRequest) -> dict[str, Chain]:
        """Check ops, limits and the source URI of an already parsed request."""
        chains = compile_variants(request.variants, self.limits, self.max_variants)
        self.sources.check(request.source)
        for chain in chains.values():
            for uri in chain.source_uris():
                self.sources.check(uri)
        return chains
