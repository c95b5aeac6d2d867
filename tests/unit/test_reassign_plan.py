"""balanced_plan: where replicas go when brokers are added or removed (pure logic; the
moves themselves are tested on a real cluster in tests/faults/test_cluster_growth.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.errors import ConfigError
from pipeline.kafka.reassign import balanced_plan


def three_broker_topic(partitions: int = 8) -> dict[tuple[str, int], list[int]]:
    """RF 3 over brokers 1-3, leaders rotating (what Kafka's creation gives)."""
    return {("jobs", p): [1 + (p + i) % 3 for i in range(3)] for p in range(partitions)}


def replicas_per_broker(assignment) -> Counter:
    return Counter(b for replicas in assignment.values() for b in replicas)


def test_a_new_broker_gets_its_share_and_kept_replicas_keep_their_order():
    before = three_broker_topic()
    plan = balanced_plan(before, [1, 2, 3, 4])
    after = {**before, **plan}
    assert replicas_per_broker(after) == {1: 6, 2: 6, 3: 6, 4: 6}
    for key, replicas in after.items():
        assert len(set(replicas)) == 3  # RF kept, no broker twice
        kept = [b for b in replicas if b != 4]
        assert kept == [b for b in before[key] if b in kept]  # order (leadership) kept
    # only partitions that gain a replica on 4 move, one replica each
    assert all(sum(b not in before[k] for b in plan[k]) == 1 for k in plan)
    assert len(plan) == 6


def test_removing_a_broker_moves_only_its_replicas():
    before = {**three_broker_topic(), **{("jobs", p): [4, 1 + p % 3, 1 + (p + 1) % 3]
                                         for p in range(8, 12)}}
    plan = balanced_plan(before, [1, 2, 3])
    after = {**before, **plan}
    assert 4 not in replicas_per_broker(after)
    assert set(plan) == {("jobs", p) for p in range(8, 12)}  # the others stay put
    counts = replicas_per_broker(after)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert all(len(set(r)) == 3 for r in after.values())


def test_a_balanced_cluster_needs_no_moves():
    assert balanced_plan(three_broker_topic(), [1, 2, 3]) == {}


def test_more_replicas_than_brokers_is_refused():
    with pytest.raises(ConfigError, match="more than the 2 brokers"):
        balanced_plan(three_broker_topic(), [1, 2])
