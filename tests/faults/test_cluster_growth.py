"""Growing and shrinking a real three-broker cluster under load (marker: faults): a
fourth broker joins and takes its share of the replicas with Kafka's reassignment, then
is emptied and removed, while jobs keep flowing; every job ends DONE exactly once."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from pipeline.kafka.reassign import current_assignment, under_replicated
from tests.faults.harness import (
    assert_exactly_once_effects,
    submit,
    three_brokers,
    wait_until_finished,
)
from tests.faults.test_faults import env_for, stop_all

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


def moved_in(stderr: str) -> float:
    """The reassignment time the CLI reported."""
    found = re.search(r"moved \d+ partitions in ([\d.]+)s", stderr)
    assert found, stderr
    return float(found.group(1))


def test_a_broker_is_added_and_removed_while_jobs_flow(tmp_path):
    with three_brokers(tmp_path) as (cluster, cluster_dir):
        env = env_for(cluster, tmp_path, IMGPIPE_REPLICATION_FACTOR="3")
        env.start_worker("w1")
        ids = submit(env, 150, "before")
        wait_until_finished(env, ids, 20)

        added = env.cli("kafka", "add-broker", "--data-dir", str(cluster_dir), check=True)
        grow_seconds = moved_in(added.stderr)
        assignment, brokers = current_assignment(cluster.bootstrap)
        assert brokers == [1, 2, 3, 4]
        per_broker = Counter(b for replicas in assignment.values() for b in replicas)
        assert max(per_broker.values()) - min(per_broker.values()) <= 1, per_broker
        ids += submit(env, 150, "grown")

        removed = env.cli("kafka", "remove-broker", "4", "--data-dir", str(cluster_dir),
                          check=True)
        shrink_seconds = moved_in(removed.stderr)
        ids += submit(env, 100, "shrunk")
        wait_until_finished(env, ids, len(ids))
        print(f"reassignment: onto broker 4 {grow_seconds:.1f}s, "
              f"off it {shrink_seconds:.1f}s")

        assignment, brokers = current_assignment(cluster.bootstrap)
        assert brokers == [1, 2, 3]
        assert all(4 not in replicas for replicas in assignment.values())
        assert under_replicated(cluster.bootstrap) == []
        again = env.cli("kafka", "rebalance", check=True)  # IMGPIPE_BROKER's cluster
        assert "0 partitions moved" in again.stdout and "1, 2, 3" in again.stdout
        stop_all(env)
        assert_exactly_once_effects(env, ids)
