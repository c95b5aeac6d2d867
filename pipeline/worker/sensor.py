"""Faust's Prometheus sensor, minus the per-event bookkeeping nothing here reads.

Faust calls its sensors five to seven times for every record (message in, stream event
in/out, message out, table get/set); PrometheusMonitor answers each with label lookups,
a stream-name normalisation and dict updates. On the ingest path that was a tenth of the
worker's time (docs/performance.md). This keeps the per-record counter dashboards use
(faust_messages_received_total, per topic) with cached label children and leaves the
per-event histograms out; rebalance, commit, send and web metrics are Faust's own.
"""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import PrometheusMonitor


class LeanPrometheusMonitor(PrometheusMonitor):
    """PrometheusMonitor with cheap per-record hooks (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._received_by_topic: dict[str, Any] = {}

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.messages_received_total += 1
        self._metrics.messages_received.inc()
        child = self._received_by_topic.get(tp.topic)
        if child is None:
            child = self._metrics.messages_received_per_topics.labels(topic=tp.topic)
            self._received_by_topic[tp.topic] = child
        child.inc()

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None
