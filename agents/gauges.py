"""Worker-level timers that feed /metrics: the consumer-lag gauge."""

from __future__ import annotations

import logging
from typing import Any

from pipeline import metrics
from pipeline.worker.app import app

log = logging.getLogger(__name__)
_reported: set[tuple[str, str]] = set()


@app.timer(interval=10.0)
async def refresh_lag_gauge() -> None:
    """Export lag for the partitions this worker consumes (summing over workers gives
    the group's lag without double counting)."""
    if app.rebalancing:
        return
    try:
        lags = await app.lag_probe.measure()
    except Exception as exc:
        log.warning("consumer lag not measured: %r", exc)
        return
    mine = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
    current = set()
    for lag in lags:
        if (lag.topic, lag.partition) in mine:
            labels = (lag.topic, str(lag.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(lag.lag)
            current.add(labels)
    for labels in _reported - current:  # partitions that moved to another worker
        metrics.CONSUMER_LAG.remove(*labels)
    _reported.clear()
    _reported.update(current)


@app.on_before_shutdown.connect
async def close_readers(sender: Any, **kwargs: Any) -> None:
    await app.kafka_reader.close()
