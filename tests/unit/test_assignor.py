"""The levelled co-partitioned assignor: a worker that joins always gets work."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from faust.assignor.client_assignment import CopartitionedAssignment

from pipeline.worker.faustcompat import LevelledCopartitionedAssignor

TOPICS = {"t.ingest", "t.jobs.normal"}


def client(actives=(), standbys=()) -> CopartitionedAssignment:
    return CopartitionedAssignment(actives=set(actives), standbys=set(standbys),
                                   topics=TOPICS)


def check(result: dict, partitions: int, replicas: int) -> None:
    actives = Counter(p for c in result.values() for p in c.actives)
    standbys = Counter(p for c in result.values() for p in c.standbys)
    assert actives == dict.fromkeys(range(partitions), 1)
    assert all(standbys[p] == replicas for p in range(partitions)), standbys
    assert all(not (c.actives & c.standbys) for c in result.values())
    counts = [len(c.actives) for c in result.values()]
    assert max(counts) - min(counts) <= 1, counts


@pytest.mark.parametrize("split", list(itertools.permutations([0, 1, 2, 3])))
def test_a_third_worker_gets_partitions_from_a_two_two_split(split):
    # two workers hold 2 + 2 partitions (standby copies of each other's), a third joins
    first, second = set(split[:2]), set(split[2:])
    result = LevelledCopartitionedAssignor(
        topics=TOPICS, num_partitions=4, replicas=1,
        cluster_asgn={"w1": client(first, second), "w2": client(second, first),
                      "w3": client()}).get_assignment()
    check(result, 4, 1)
    assert result["w3"].actives


@pytest.mark.parametrize(("partitions", "members"), [(4, 3), (8, 5), (8, 3), (6, 4), (3, 5)])
def test_scale_out_one_member_at_a_time_stays_level(partitions, members):
    state = {"w0": client(range(partitions))}
    for joined in range(1, members):
        state[f"w{joined}"] = client()
        state = dict(LevelledCopartitionedAssignor(
            topics=TOPICS, num_partitions=partitions, replicas=1,
            cluster_asgn=state).get_assignment())
        check(state, partitions, 1 if len(state) > 1 else 0)


def test_skipped_records_of_our_topics_are_never_committed_past(monkeypatch):
    import asyncio

    from aiokafka import TopicPartition

    from pipeline.worker import faustcompat as faustcompat

    recorded = []

    async def faust_add_gap(self, tp, begin, end):
        recorded.append((tp.topic, begin, end))

    monkeypatch.setattr(faustcompat, "_add_gap_of_faust", faust_add_gap)
    monkeypatch.setattr(faustcompat, "_GAPLESS", ["t1234.", "other."])
    asyncio.run(faustcompat._add_gap(None, TopicPartition("t1234.ingest", 0), 5, 9))
    asyncio.run(faustcompat._add_gap(None, TopicPartition("t1234-jobs-changelog", 0), 5, 9))
    # our source topics have no gaps (only skipped records): nothing is recorded as one;
    # anything else (a compacted changelog) keeps Faust's gap handling
    assert recorded == [("t1234-jobs-changelog", 5, 9)]


def test_commits_on_our_topics_never_skip_records_at_a_partitions_head(monkeypatch):
    import faust
    from faust.types import TP

    from pipeline.worker import faustcompat

    app = faust.App("commit-test", broker="kafka://127.0.0.1:1", store="memory://",
                    autodiscover=False)
    consumer = app.consumer
    monkeypatch.setattr(faustcompat, "_GAPLESS", ["t9."])
    monkeypatch.setattr(faustcompat, "_STARTS", {})

    def new_offset(tp, acked, committed=None):
        consumer._acked[tp] = list(acked)
        consumer._acked_index[tp] = set(acked)
        consumer._committed_offset[tp] = committed
        return faustcompat._new_offset(consumer, tp)

    ours, other = TP("t9.ingest", 3), TP("elsewhere", 3)
    # a never-committed partition whose first four records were skipped: Faust commits
    # past them (they are lost); ours waits for them
    assert new_offset(ours, [4, 5, 6]) is None
    assert new_offset(ours, [0, 1, 2]) == 3
    faustcompat._STARTS[("t9.ingest", 3)] = 10  # retention removed 0-9: reading starts at 10
    assert new_offset(ours, [10, 11]) == 12
    # a committed partition: the run must start at the committed offset (Faust lets one
    # missing record through: 38 acked after 37 committed)
    assert new_offset(ours, [38, 39], committed=37) is None
    assert new_offset(ours, [37, 38, 39], committed=37) == 40
    # other topics keep Faust's behaviour
    assert new_offset(other, [4, 5, 6]) == 7
    assert new_offset(other, [38, 39], committed=37) == 40
