"""Which bucket notifications become jobs, and the JobRequest each one makes."""

from __future__ import annotations

import time

from pipeline.jobs.rules import Rules, StoredObject
from pipeline.jobs.storage_events import job_id_for
from pipeline.models import SUBMITTED_AT_MIN, JobRequest, display_name, qualify_job_id

#: What happened to one notification (the ``outcome`` label of
#: imgpipe_storage_events_total: a fixed set, whatever the events say).
JOB, UNMATCHED, IGNORED_EVENT, OWN_OBJECT = "job", "unmatched", "ignored_event", "own_object"
OUTCOMES = (JOB, UNMATCHED, IGNORED_EVENT, OWN_OBJECT)


class StorageJobs:
    """Turns finalized objects that a route takes into JobRequests.

    ``own_prefixes`` are the URIs under which the pipeline writes (outputs, sources, the
    lake): objects there never make jobs, even in a watched bucket, so an output can
    never trigger the job that made it.
    """

    def __init__(self, rules: Rules, own_prefixes: tuple[str, ...]) -> None:
        self.rules = rules
        self.own_prefixes = own_prefixes

    def request_for(self, obj: StoredObject) -> tuple[JobRequest | None, str]:
        """(the job for ``obj`` or None, the outcome). The job id comes from bucket,
        object and generation, so redeliveries and replays make the same job."""
        if obj.event != "finalize":
            return None, IGNORED_EVENT
        if any(obj.uri.startswith(prefix) for prefix in self.own_prefixes):
            return None, OWN_OBJECT
        route = self.rules.route_for(obj)
        if route is None:
            return None, UNMATCHED
        now = time.time()
        created = obj.created_at or 0.0
        submitted = created if SUBMITTED_AT_MIN <= created <= now else now
        return JobRequest(job_id=qualify_job_id(route.tenant, job_id_for(obj)), source=obj.uri,
                          variants=self.rules.preset(route.preset), priority=route.priority,
                          tenant=route.tenant, submitted_at=submitted,
                          name=display_name(obj.name), preset=route.preset), JOB
