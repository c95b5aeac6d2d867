"""HTTP API, dashboard and probes served by every worker (Faust web, aiohttp).

Views reach the worker's services through their app (``self.app``: runtime, topic
names, lag probe, ``job_states`` and ``throughput`` registered by tables/); nothing here
imports tables/ or agents/. The app registers ``web_routes()`` at worker start;
``server`` holds the web driver.
"""

from __future__ import annotations

from typing import Any


def web_routes() -> dict[str, Any]:
    """Path -> Faust View class of every page."""
    from pipeline.web import caller, health, jobs, similar, states, stats

    return {**health.ROUTES, **jobs.ROUTES, **states.ROUTES, **stats.ROUTES, **similar.ROUTES,
            **caller.ROUTES}
