"""Small real-Kafka helpers for tests: produce raw records, read a whole topic."""

from __future__ import annotations

import asyncio
import json

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


def produce_raw(bootstrap: str, topic: str, records: list[tuple], partition: int | None = None
                ) -> None:
    """Produce (key, value) or (key, value, headers) records in order, each acked."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    max_request_size=4 * 1024 * 1024)
        await producer.start()
        try:
            for key, value, *headers in records:
                await (await producer.send(topic, key=key, value=value, partition=partition,
                                           headers=headers[0] if headers else None))
        finally:
            await producer.stop()

    asyncio.run(run())


def read_topic(bootstrap: str, topic: str, headers: bool = False) -> list[dict]:
    """Every record now in ``topic`` (values JSON-decoded), without a consumer group;
    ``headers``: each as ``{"value": ..., "headers": {name: text}}``."""

    async def run() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer._client.set_topics([topic])  # load the topic's metadata
            partitions = consumer.partitions_for_topic(topic) or set()
            assert partitions, f"topic {topic} does not exist"
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            records = []
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=2000)
                    for message in batch.get(tp, []):
                        value = json.loads(message.value)
                        records.append({"value": value, "headers": {
                            k: v.decode() for k, v in message.headers}} if headers else value)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(run())
