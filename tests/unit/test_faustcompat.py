"""Each helper of the Faust seam against the installed faust-streaming and aiokafka: an
upgrade that renames what a helper reaches fails here, not in production."""

from __future__ import annotations

import asyncio
import inspect

import aiokafka
import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.exceptions import NotReady
from faust.transport import consumer as faust_consumer

from pipeline.errors import ConfigError
from pipeline.worker import faustcompat


@pytest.fixture
def app():
    return faust.App("compat-test", broker="kafka://127.0.0.1:1", store="memory://",
                     autodiscover=False)


def test_the_installed_versions_are_the_supported_ones():
    assert faust.__version__.startswith(faustcompat.SUPPORTED_FAUST)
    assert aiokafka.__version__.startswith(faustcompat.SUPPORTED_AIOKAFKA)
    faustcompat.check_versions()


def test_another_faust_version_stops_the_worker(monkeypatch):
    monkeypatch.setattr(faust, "__version__", "0.16.0")
    with pytest.raises(ConfigError) as refused:
        faustcompat.install("t")
    assert refused.value.code == "unsupported_version"
    assert "0.16.0" in refused.value.message


def test_install_patches_what_the_fixes_replace():
    from faust.assignor import partition_assignor
    from faust.transport.drivers import aiokafka as driver

    faustcompat.install("imgpipe-test")
    assert faust_consumer.Consumer.getmany is faustcompat._getmany
    assert faust_consumer.Consumer._add_gap is faustcompat._add_gap
    assert faust_consumer.Consumer._new_offset is faustcompat._new_offset
    assert driver.AIOKafkaConsumerThread.seek_to_committed is faustcompat._seek_to_committed
    assert partition_assignor.CopartitionedAssignor is faustcompat.LevelledCopartitionedAssignor
    assert faust.Stream.take_events.__wrapped__ is faustcompat._take_events
    assert "imgpipe-test." in faustcompat._GAPLESS


def test_the_replaced_methods_keep_the_signatures_the_fixes_were_written_for():
    params = inspect.signature(faustcompat._add_gap_of_faust).parameters
    assert list(params) == ["self", "tp", "offset_from", "offset_to"]
    for name in ("_wait_next_records", "_to_message", "highwater", "perform_seek"):
        assert callable(getattr(faust_consumer.Consumer, name)), name
    params = inspect.signature(faustcompat._new_offset_of_faust).parameters
    assert list(params) == ["self", "tp"]
    # Fix 6 is Faust's take_events with an idle wait: it relies on these stream parts.
    for name in ("add_processor", "_enable_passive", "wait_for_stopped", "ack", "wait"):
        assert callable(getattr(faust.Stream, name)), name
    assert "_processors" in faust.Stream.__annotations__


def test_the_commit_bookkeeping_the_fixes_read_exists(app):
    consumer = app.consumer
    for name in ("_acked", "_acked_index", "_committed_offset", "_gap", "_read_offset"):
        assert hasattr(consumer, name), name
    assert consumer._committed_offset[TopicPartition("t", 0)] is None  # never committed


def test_read_offset_reads_what_the_consumer_delivered(app):
    tp = TopicPartition("t", 0)
    assert faustcompat.read_offset(app.consumer, tp) is None
    app.consumer._read_offset[tp] = 41  # what Faust sets on delivery
    assert faustcompat.read_offset(app.consumer, tp) == 41


def test_the_consumer_thread_can_seek_on_its_own_thread(app):
    thread = app.consumer._thread
    assert callable(thread.call_thread) and callable(thread._ensure_consumer)


def test_current_event_is_set_and_restored():
    class Event:
        pass

    event = Event()
    token = faustcompat.current_event_as(event)
    try:
        assert faust.current_event() is event
    finally:
        faustcompat.restore_current_event(token)
    assert faust.current_event() is None


def test_a_remade_changelog_topic_takes_the_tables_key_serializer(app):
    table = app.Table("jobs", default=None, key_type=str, partitions=4)
    assert table.changelog_topic.key_serializer != "raw"
    table.key_serializer = "raw"
    topic = faustcompat.remake_changelog_topic(table)
    assert topic.key_serializer == "raw"
    assert topic.get_topic_name() == table.changelog_topic.get_topic_name()


def test_trusted_source_partitions_skip_the_partition_check(app):
    table = app.Table("counts", default=int, partitions=4)
    faustcompat.trust_source_partitions(table, ["t.ingest"])
    assert "t.ingest" in table._verified_source_topics_for_partitions


def test_raw_producer_and_kafka_client_are_aiokafka_objects(app):
    async def check() -> None:
        with pytest.raises(NotReady):  # Faust makes its aiokafka producer at start
            faustcompat.raw_producer(app)
        started = aiokafka.AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
        app.producer._producer = started  # what the producer's start sets
        assert faustcompat.raw_producer(app) is started
        admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:1")
        assert hasattr(faustcompat.kafka_client(admin), "cluster")
        consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
        assert hasattr(faustcompat.kafka_client(consumer), "set_topics")

    asyncio.run(check())


def test_resuming_a_running_flow_keeps_the_queued_records(app):
    """Fix 7, on Faust's own FlowControlEvent and queue: recovery's last resume of a flow
    that runs already drops nothing; a resume after a suspension (a rebalance) still
    empties the queues."""
    faustcompat.resume_empties_only_suspended_queues(app)

    async def main():
        queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
        app.flow_control.resume()  # a new app's flow starts suspended
        queue.put_nowait("delivered after the seek")
        app.flow_control.resume()  # running already: what the queue holds stays
        assert queue.qsize() == 1
        app.flow_control.suspend()
        app.flow_control.resume()
        assert queue.empty()

    asyncio.run(main())
