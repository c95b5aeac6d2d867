"""The archiver's own bookkeeping, without a broker: records it already holds are never
archived twice, whatever order the consumer hands them over in."""

import asyncio
import json
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
from aiokafka import TopicPartition

from pipeline.lake.archiver import Archiver, _Resume
from pipeline.objects import MemoryObjectStore

TP = TopicPartition("p.results", 3)


class FakeConsumer:
    def __init__(self, committed: int | None) -> None:
        self._committed = committed
        self.commits: list[int] = []
        self.seeks: list[int] = []

    async def committed(self, tp):
        return self._committed

    async def commit(self, offsets):
        self.commits.append(offsets[TP].offset)

    def seek(self, tp, offset):
        self.seeks.append(offset)


def record(offset: int) -> SimpleNamespace:
    value = json.dumps({"job_id": f"j{offset}", "status": "DONE"}).encode()
    return SimpleNamespace(offset=offset, timestamp=1_795_000_000_000, value=value)


def test_records_below_the_resume_point_are_dropped_even_after_the_seek():
    store = MemoryObjectStore("lake")
    archiver = Archiver({"bootstrap_servers": "unused"}, "g", {"results": "p.results"},
                        store, "lake", roll_records=5, roll_seconds=60)
    archiver._consumer = consumer = FakeConsumer(committed=0)

    async def run() -> None:
        store.put("lake/results/dt=2026-11-18/hour=07/results-p0003-000000000000-"
                  "000000000004.parquet", b"stored before a crash", "application/x")
        await _Resume(archiver).on_partitions_assigned({TP})
        # What the consumer delivered after the restart: the old offsets again, then
        # new ones, then an old batch once more.
        for offset in [0, 1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 7, 8, 9]:
            await archiver._add(TP, record(offset))
        for tp in list(archiver._buffers):
            await archiver._flush(tp)

    asyncio.run(run())
    assert consumer.seeks == [5]
    offsets = []
    for key in store.list_keys("lake/results"):
        data = store.get(store.uri_for(key), 1 << 20)
        if data != b"stored before a crash":
            offsets += [r["kafka_offset"] for r in pq.read_table(pa.BufferReader(data))
                        .to_pylist()]
    assert offsets == [5, 6, 7, 8, 9]
    assert consumer.commits == [10]
