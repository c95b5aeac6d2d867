"""Moving partition replicas between brokers with Kafka's own reassignment.

``balanced_plan`` (pure) spreads every partition's replicas evenly over the brokers to
keep, moving as few as it can; ``reassign`` hands the plan to Kafka's
kafka-reassign-partitions tool (``ReassignPartitionsCommand``) with a replication
throttle and waits until every move is complete (the tool's ``--verify`` also lifts the
throttle). Used by ``imgpipe kafka rebalance``, ``add-broker`` and ``remove-broker``
(docs/runbook.md, "Growing and shrinking the cluster").
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.kafka.jars import resolve_classpath
from pipeline.kafka.nodeconfig import java_command

#: {(topic, partition): [broker ids, preferred leader first]}
Assignment = dict[tuple[str, int], list[int]]
REASSIGN_TOOL = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
CLUSTER_TOOL = "org.apache.kafka.tools.ClusterTool"
#: Default replication throttle: enough to move imgpipe's small records in seconds, low
#: enough that followers catching up never starve producers on a shared broker.
DEFAULT_THROTTLE_BYTES = 50 << 20


#: Tries of a metadata read: the admin client sends it to any broker, and one that has
#: just joined is listed before the client has a connection to it.
DESCRIBE_TRIES = 40


async def _describe(bootstrap: str) -> tuple[list[dict], list[int]]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for attempt in range(DESCRIBE_TRIES):
            try:
                described = await admin.describe_topics()  # every topic, internal ones too
                cluster = await admin.describe_cluster()
                break
            except (NodeNotReadyError, KafkaConnectionError):
                if attempt == DESCRIBE_TRIES - 1:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await admin.close()
    brokers = sorted(b["node_id"] for b in cluster["brokers"])
    return [{"topic": t["topic"], **p} for t in described for p in t["partitions"]], brokers


def current_assignment(bootstrap: str) -> tuple[Assignment, list[int]]:
    """Every partition's replicas (internal topics included) and the live brokers."""
    partitions, brokers = asyncio.run(_describe(bootstrap))
    return {(p["topic"], p["partition"]): list(p["replicas"]) for p in partitions}, brokers


def under_replicated(bootstrap: str) -> list[tuple[str, int]]:
    """Partitions whose in-sync replicas are fewer than their replicas."""
    partitions, _ = asyncio.run(_describe(bootstrap))
    return sorted((p["topic"], p["partition"]) for p in partitions
                  if set(p["isr"]) != set(p["replicas"]))


def balanced_plan(assignment: Assignment, brokers: list[int]) -> Assignment:
    """The partitions whose replicas must change so that each lies on ``brokers`` only
    and every broker holds the same number of replicas, give or take one. A replica
    that moves takes the place of the one it replaces, so the others keep their order
    (a preferred leader that stays remains preferred); moves are one replica at a time,
    from the fullest broker to the emptiest, so few partitions move."""
    if not brokers:
        raise ConfigError("no brokers to place replicas on")
    target = {key: list(replicas) for key, replicas in assignment.items()}
    load = Counter({broker: 0 for broker in brokers})
    load.update(b for replicas in target.values() for b in replicas if b in load)
    for key in sorted(target):  # replicas on brokers that go: to the emptiest others
        replicas = target[key]
        if len(set(replicas)) > len(brokers):
            raise ConfigError(f"{key[0]}-{key[1]} has {len(replicas)} replicas, more "
                              f"than the {len(brokers)} brokers to place them on")
        for position, broker in enumerate(replicas):
            if broker not in load:
                replicas[position] = _emptiest(load, replicas)
                load[replicas[position]] += 1
    while True:  # then level: fullest -> emptiest, a non-leader replica where possible
        fullest = max(brokers, key=lambda b: (load[b], -b))
        emptiest = min(brokers, key=lambda b: (load[b], b))
        if load[fullest] - load[emptiest] <= 1:
            break
        key, position = max(((k, r.index(fullest)) for k, r in sorted(target.items())
                             if fullest in r and emptiest not in r),
                            key=lambda pair: pair[1])
        target[key][position] = emptiest
        load[fullest] -= 1
        load[emptiest] += 1
    return {key: replicas for key, replicas in target.items()
            if replicas != assignment[key]}


def _emptiest(load: Counter, taken: list[int]) -> int:
    return min((b for b in load if b not in taken), key=lambda b: (load[b], b))


def _tool(main_class: str, args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="imgpipe-kafka-tool-") as logs:
        return subprocess.run([*java_command(resolve_classpath(), Path(logs), "256m"),
                               main_class, *args], capture_output=True, text=True)


def reassign(bootstrap: str, plan: Assignment, throttle: int = DEFAULT_THROTTLE_BYTES,
             echo: Callable[[str], None] = print, timeout: float = 1800) -> float:
    """Execute ``plan`` with a replication throttle of ``throttle`` bytes/s and wait until
    every partition has moved; returns the seconds it took."""
    if not plan:
        echo("nothing to move: the replicas are already where they should be")
        return 0.0
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"version": 1, "partitions": [
            {"topic": topic, "partition": partition, "replicas": replicas}
            for (topic, partition), replicas in sorted(plan.items())]}, handle)
    common = ["--bootstrap-server", bootstrap, "--reassignment-json-file", handle.name]
    started = time.monotonic()
    try:
        done = _tool(REASSIGN_TOOL, [*common, "--execute", "--throttle", str(throttle)])
        if done.returncode != 0:
            raise ConfigError("kafka-reassign-partitions refused the plan:\n"
                              + (done.stdout + done.stderr)[-2000:])
        echo(f"moving {len(plan)} partitions (throttle {throttle >> 20} MiB/s)...")
        while True:
            verify = _tool(REASSIGN_TOOL, [*common, "--verify"])
            waiting = verify.stdout.count("still in progress")
            if verify.returncode == 0 and waiting == 0 and "complete" in verify.stdout:
                break
            if time.monotonic() - started > timeout:
                raise ConfigError(f"the reassignment did not finish in {timeout:.0f}s; "
                                  "see `kafka-reassign-partitions --verify` for what is left")
            echo(f"  {len(plan) - waiting}/{len(plan)} partitions moved")
            time.sleep(1)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    took = time.monotonic() - started
    echo(f"moved {len(plan)} partitions in {took:.1f}s; throttle lifted")
    return took


def rebalance(bootstrap: str, excluded: tuple[int, ...] = (),
              throttle: int = DEFAULT_THROTTLE_BYTES,
              echo: Callable[[str], None] = print) -> tuple[int, list[int], float]:
    """Spread every partition's replicas evenly over the cluster's brokers except
    ``excluded``; returns the partitions moved, the brokers kept and the seconds it took."""
    assignment, brokers = current_assignment(bootstrap)
    unknown = sorted(set(excluded) - set(brokers))
    if unknown:
        raise ConfigError(f"--exclude {', '.join(map(str, unknown))}: no such broker (the "
                          f"cluster's brokers are {', '.join(map(str, sorted(brokers)))})")
    keep = [b for b in brokers if b not in excluded]
    plan = balanced_plan(assignment, keep)
    return len(plan), keep, reassign(bootstrap, plan, throttle, echo)


def unregister_broker(bootstrap: str, broker_id: int) -> None:
    """Forget a stopped broker in the cluster's metadata (else it stays listed, fenced)."""
    done = _tool(CLUSTER_TOOL, ["unregister", "--bootstrap-server", bootstrap,
                                "--id", str(broker_id)])
    if done.returncode != 0:
        raise ConfigError(f"could not unregister broker {broker_id}:\n"
                          + (done.stdout + done.stderr)[-2000:])
