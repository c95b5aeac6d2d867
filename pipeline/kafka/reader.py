"""Read-only Kafka access for the web views: topic partitions, offsets and records,
without a consumer group (reading never moves anybody's offsets)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


class KafkaReader:
    """One admin client and one group-less consumer, opened on first use."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options  # bootstrap_servers and security (kafkasecurity.kafka_options)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self.options,
                                        request_timeout_ms=10000)
            await admin.start()
            self._admin = admin
        return self._admin

    async def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**self.options,
                                        group_id=None, enable_auto_commit=False,
                                        request_timeout_ms=10000)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def partitions(self, topics: list[str]) -> list[TopicPartition]:
        """Every partition of ``topics`` (as the brokers know them now), sorted."""
        described = await (await self.admin()).describe_topics(topics)
        return sorted(TopicPartition(t["topic"], p["partition"]) for t in described
                      if t["error_code"] == 0 for p in t["partitions"])

    async def offsets(self, partitions: list[TopicPartition]
                      ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """(first retained offset, end offset) of each partition."""
        consumer = await self.consumer()
        return (await consumer.beginning_offsets(partitions),
                await consumer.end_offsets(partitions))

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
