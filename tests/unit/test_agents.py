"""The agents' logic, run without a broker (tests/agentkit.py): ingest admits, routes,
re-keys, rejects and dedupes; process runs a batch and refuses through the one refusal
path; retry requeues each record form; the sweeper re-sends only jobs lost in transit."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agents.ingest import admit_batch
from agents.process import CRASHES_TO_FAIL, handle_batch, process_batches, salvage
from agents.retry import requeue
from agents.sweep import Sweeper
from pipeline.errors import StorageUnavailable
from pipeline.models import job_request_from_dict, qualify_job_id
from pipeline.records import DeadLetter, RetryRecord
from tables import transitions
from tables.jobs import JobStates, collect_changelog_writes
from tests.agentkit import agent_kit
from tests.images import encode, quadrants

THUMB = {"t": [{"op": "thumbnail", "size": 32}, {"op": "encode", "format": "png"}]}


@pytest.fixture
def kit(tmp_path):
    with agent_kit(tmp_path) as kit:
        yield kit


def request_dict(kit, tmp_path, name: str, variants=None, priority="normal") -> dict:
    image = tmp_path / f"{name}.png"
    image.write_bytes(encode(quadrants(64, 48)))
    return {"job_id": name, "source": image.as_uri(), "variants": variants or THUMB,
            "priority": priority, "submitted_at": time.time()}


def run(coro):
    return asyncio.run(coro)


def test_ingest_routes_an_admitted_job_and_marks_it_queued(kit, tmp_path):
    job = request_dict(kit, tmp_path, "a1", priority="high")
    job_id = qualify_job_id("default", "a1")
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, job, key=job_id)]))
    [routed] = kit.topics.logs[kit.names.priority["high"]]
    assert routed.key == job_id.encode()
    assert job_request_from_dict(json.loads(routed.value)).job_id == job_id
    state = kit.table[job_id]
    assert state["status"] == "QUEUED"
    assert state["routed"] == [kit.names.priority["high"], routed.message.partition, 0]


def test_ingest_rekeys_an_event_keyed_by_something_else(kit, tmp_path):
    job = request_dict(kit, tmp_path, "a2")
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, job, key="whatever")]))
    assert not kit.topics.logs[kit.names.priority["normal"]]
    again = kit.topics.logs[kit.names.ingest][-1]
    assert again.key == qualify_job_id("default", "a2").encode() and not kit.table


def test_ingest_rejects_into_the_dlq_and_the_job_state(kit, tmp_path):
    job = request_dict(kit, tmp_path, "a3", variants={"x": [{"op": "explode"}]})
    job_id = qualify_job_id("default", "a3")
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, job, key=job_id),
                              kit.event(kit.names.ingest, b"{not json", key="k")]))
    letters = [DeadLetter.from_dict(d) for d in kit.topics.values(kit.names.dlq)]
    assert [(d.job_id, d.reason, d.stage) for d in letters] == [
        (job_id, "unknown_op", "ingest"), ("k", "malformed_json", "ingest")]
    assert letters[1].raw == "{not json" and letters[1].source_topic.startswith(
        kit.names.ingest)
    assert kit.table[job_id]["status"] == "REJECTED"
    assert [h["status"] for h in kit.table[job_id]["history"]] == ["REJECTED"]
    # counted under the priority the refused event asked for, when it named one
    assert kit.outcomes[("normal", "rejected")] == 1
    assert kit.outcomes[("unknown", "rejected")] == 1
    assert kit.table[job_id]["priority"] == "normal"
    assert not kit.topics.logs[kit.names.priority["normal"]]


def test_a_refused_event_never_changes_an_existing_job_at_ingest(kit, tmp_path):
    job_id = qualify_job_id("default", "a4")
    kit.table[job_id] = {"job_id": job_id, "status": "DONE", "history": []}
    bad = {**request_dict(kit, tmp_path, "a4"), "variants": {"x": [{"op": "explode"}]}}
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, bad, key=job_id)]))
    assert kit.table[job_id]["status"] == "DONE"
    assert len(kit.topics.logs[kit.names.dlq]) == 1


def test_ingest_does_not_queue_a_done_job_twice(kit, tmp_path):
    job = request_dict(kit, tmp_path, "a5")
    job_id = qualify_job_id("default", "a5")
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, job, key=job_id)]))
    kit.table[job_id] = {**kit.table[job_id], "status": "DONE"}
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, job, key=job_id)]))
    assert len(kit.topics.logs[kit.names.priority["normal"]]) == 1
    forced = {**job, "force": True}
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, forced, key=job_id)]))
    assert len(kit.topics.logs[kit.names.priority["normal"]]) == 2


def test_a_send_the_brokers_refuse_is_sent_again_before_the_batch_ends(kit, tmp_path):
    kit.topics.refuse[kit.names.priority["normal"]] = 1
    job = request_dict(kit, tmp_path, "a6")
    job_id = qualify_job_id("default", "a6")
    run(admit_batch(kit.ctx, [kit.event(kit.names.ingest, job, key=job_id)]))
    [routed] = kit.topics.logs[kit.names.priority["normal"]]
    assert routed.key == job_id.encode() and kit.table[job_id]["status"] == "QUEUED"


def work_event(kit, job: dict):
    job_id = qualify_job_id("default", job["job_id"])
    value = {**job, "job_id": job_id, "tenant": "default"}
    return job_id, kit.event(kit.names.priority[job["priority"]], value, key=job_id)


class GatedTable(dict):
    """A table whose changelog writes (Faust's send_changelog futures) land only when
    the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[asyncio.Future] = []

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.send_changelog(None, key, value)

    def send_changelog(self, partition, key, value) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.sent.append(future)
        return future


def test_a_batch_waits_for_its_own_processing_states_before_image_work(kit, tmp_path,
                                                                        monkeypatch):
    # Fix 18: the PROCESSING states of the batch are confirmed before the image work
    # (a crash in it is then seen by the next owner), and nothing else is waited for.
    table = GatedTable()
    collect_changelog_writes(table)
    kit.ctx.states = JobStates(table, kit.ctx.settings.partitions)
    unrelated = None
    io = kit.ctx.runtime.io
    work_started = []
    real_run = io.run

    def run_on_io(fn, *args):
        work_started.append(fn)  # a job's first step: fetching its source
        return real_run(fn, *args)

    monkeypatch.setattr(io, "run", run_on_io)

    async def scenario():
        nonlocal unrelated
        unrelated = asyncio.get_running_loop().create_future()
        table.sent.append(unrelated)  # another agent's write, never confirmed
        job_id, event = work_event(kit, request_dict(kit, tmp_path, "g1"))
        task = asyncio.ensure_future(handle_batch(kit.ctx, "normal", [event]))
        while len(table.sent) < 2:  # the PROCESSING state was written
            await asyncio.sleep(0)
        for _ in range(50):  # the batch stays parked while its write is unconfirmed
            await asyncio.sleep(0)
        assert not task.done() and table[job_id]["status"] == "PROCESSING"
        assert work_started == [] and kit.topics.logs[kit.names.results] == []
        table.sent[1].set_result(None)
        await task
        return job_id

    job_id = run(scenario())
    assert table[job_id]["status"] == "DONE" and not unrelated.done()
    [result] = kit.topics.values(kit.names.results)
    assert result["job_id"] == job_id and result["status"] == "DONE"


def test_job_states_collect_each_tasks_own_changelog_writes():
    table = GatedTable()
    collect_changelog_writes(table)
    states = JobStates(table, 4)

    async def writer(name: str) -> list:
        with states.writes() as writes:
            for i in range(3):
                states.put({"job_id": f"{name}-{i}", "status": "QUEUED"})
                await asyncio.sleep(0)  # the other task writes meanwhile
        states.put({"job_id": f"{name}-after", "status": "QUEUED"})
        return writes

    async def both():
        return await asyncio.gather(writer("a"), writer("b"))

    writes_a, writes_b = run(both())
    assert len(table.sent) == 8 and len(writes_a) == len(writes_b) == 3
    assert not set(map(id, writes_a)) & set(map(id, writes_b))
    assert set(map(id, writes_a + writes_b)) <= set(map(id, table.sent))


def test_process_finishes_a_batch_once_per_job(kit, tmp_path):
    job_id, event = work_event(kit, request_dict(kit, tmp_path, "p1"))
    _, copy = work_event(kit, request_dict(kit, tmp_path, "p1"))
    run(handle_batch(kit.ctx, "normal", [event, copy]))
    state = kit.table[job_id]
    assert state["status"] == "DONE"
    [result] = kit.topics.values(kit.names.results)
    assert result["job_id"] == job_id and result["status"] == "DONE"
    assert [o["variant"] for o in result["outputs"]] == ["t"]
    assert [h["status"] for h in state["history"]].count("PROCESSING") == 1
    assert kit.outcomes[("normal", "done")] == 1


def test_a_batch_counts_its_finished_jobs_once_per_partition_and_outcome(kit, tmp_path):
    """One throughput write (one changelog record) per partition and outcome of a batch,
    carrying the number of jobs, instead of one per job."""
    events = [work_event(kit, request_dict(kit, tmp_path, f"c{i}"))[1] for i in range(8)]
    bad = request_dict(kit, tmp_path, "c-bad", variants={"x": [{"op": "blur"}]})
    (tmp_path / "c-bad.png").write_bytes(b"not an image")
    events.append(work_event(kit, bad)[1])
    counted = []
    kit.ctx.count_outcome = lambda event, priority, outcome, jobs=1: counted.append(
        (event.message.partition, priority, outcome, jobs))
    run(handle_batch(kit.ctx, "normal", events))
    partitions = {e.message.partition for e in events[:8]}
    assert len(partitions) > 1  # the batch mixes partitions
    done = [c for c in counted if c[2] == "done"]
    assert sorted(p for p, *_ in done) == sorted(partitions)  # one write per partition
    assert sum(c[3] for c in done) == 8
    assert [c[1:] for c in counted if c[2] == "failed"] == [("normal", "failed", 1)]


def test_process_refuses_through_the_one_refusal_path(kit, tmp_path):
    bad = request_dict(kit, tmp_path, "p2", variants={"x": [{"op": "explode"}]})
    job_id, event = work_event(kit, bad)
    queued_id, queued_event = work_event(kit, {**bad, "job_id": "p3"})
    request = job_request_from_dict({**request_dict(kit, tmp_path, "p3"), "job_id": queued_id,
                                    "tenant": "default"})
    kit.table[queued_id] = transitions.queued(None, request, "i/0/0")
    run(handle_batch(kit.ctx, "normal", [event, queued_event]))
    # no state yet: REJECTED alone (as at ingest); in flight: FAILED
    assert [h["status"] for h in kit.table[job_id]["history"]] == ["REJECTED"]
    assert kit.table[queued_id]["status"] == "FAILED"
    assert kit.table[queued_id]["error"]["code"] == "unknown_op"
    reasons = [(d["job_id"], d["reason"], d["stage"]) for d in kit.topics.values(
        kit.names.dlq)]
    assert reasons == [(job_id, "unknown_op", "process"), (queued_id, "unknown_op", "process")]


def test_a_job_that_keeps_killing_its_worker_is_given_up(kit, tmp_path):
    job = request_dict(kit, tmp_path, "p4")
    job_id, event = work_event(kit, job)
    request = job_request_from_dict({**job, "job_id": job_id, "tenant": "default"})
    state = transitions.processing(transitions.queued(None, request, "i/0/0"), request)
    for _ in range(CRASHES_TO_FAIL - 1):  # each earlier run died without an outcome
        state = transitions.processing(transitions.crashed(state), request)
    kit.table[job_id] = state
    run(handle_batch(kit.ctx, "normal", [event]))
    assert kit.table[job_id]["status"] == "FAILED"
    assert kit.table[job_id]["error"]["code"] == "worker_crashed"
    assert [d["reason"] for d in kit.topics.values(kit.names.dlq)] == ["worker_crashed"]
    assert kit.topics.values(kit.names.results)[0]["status"] == "FAILED"


def test_a_salvaged_batch_goes_to_retry_and_back_to_its_work_topic(kit, tmp_path):
    job = request_dict(kit, tmp_path, "s1")
    job_id, event = work_event(kit, job)
    request = job_request_from_dict({**job, "job_id": job_id, "tenant": "default"})
    kit.table[job_id] = transitions.processing(None, request)
    done_id, done_event = work_event(kit, request_dict(kit, tmp_path, "s2"))
    kit.table[done_id] = {"job_id": done_id, "status": "DONE", "history": []}
    run(salvage(kit.ctx, [event, done_event]))
    # its job shows RETRYING at once (its run closed: not a crash); finished jobs stay
    assert kit.table[job_id]["status"] == "RETRYING"
    assert transitions.unfinished_runs(kit.table[job_id]) == 0
    assert kit.table[done_id]["status"] == "DONE"
    kit.topics.logs[kit.names.retry].pop()
    [record] = kit.topics.logs[kit.names.retry]
    parsed = RetryRecord.from_dict(kit.topics.values(kit.names.retry)[0])
    assert parsed.topic == event.message.topic and parsed.raw == event.value.decode()
    run(requeue(kit.ctx, kit.event(kit.names.retry, {**parsed.to_dict(), "retry_at": 0},
                                   key=record.key.decode())))
    back = kit.topics.logs[event.message.topic][-1]
    assert back.value == event.value and back.key == event.key


def test_retry_requeues_a_failed_attempt_to_its_priority(kit, tmp_path):
    job = request_dict(kit, tmp_path, "r1", priority="low")
    job_id = qualify_job_id("default", "r1")
    request = job_request_from_dict({**job, "job_id": job_id, "tenant": "default"})
    record = RetryRecord(retry_at=time.time() - 1, error=StorageUnavailable("x").to_dict(),
                         request=request.with_attempt(1).to_dict())
    run(requeue(kit.ctx, kit.event(kit.names.retry, record.to_dict(), key=job_id)))
    [sent] = kit.topics.logs[kit.names.priority["low"]]
    assert job_request_from_dict(json.loads(sent.value)).attempt == 1


@pytest.mark.parametrize("value", [b"[]", b"{\"retry_at\": 1}", b"\xff", b"{\"request\": 3}"])
def test_an_unusable_retry_record_is_dead_lettered(kit, value):
    run(requeue(kit.ctx, kit.event(kit.names.retry, value, key="k")))
    [letter] = kit.topics.values(kit.names.dlq)
    assert letter["reason"] == "bad_retry_record" and letter["stage"] == "retry"


def queued_state(kit, tmp_path, name: str, offset: int, age: float) -> dict:
    job = request_dict(kit, tmp_path, name)
    request = job_request_from_dict({**job, "job_id": qualify_job_id("default", name),
                                    "tenant": "default"})
    topic = kit.names.priority["normal"]
    state = transitions.queued(None, request, "i/0/0", now=time.time() - age,
                               routed_to=(topic, 0, offset))
    kit.table[request.job_id] = state
    return state


def test_the_sweeper_resends_only_jobs_lost_in_transit(kit, tmp_path):
    stale = kit.ctx.settings.sweep_stale_after + 1
    topic = kit.names.priority["normal"]
    lost = queued_state(kit, tmp_path, "w1", offset=3, age=stale)
    queued_state(kit, tmp_path, "w2", offset=7, age=stale)  # not reached by the group yet
    queued_state(kit, tmp_path, "w3", offset=2, age=0)  # just queued: not stale yet
    running = queued_state(kit, tmp_path, "w4", offset=4, age=stale)
    other = queued_state(kit, tmp_path, "w5", offset=1, age=stale)
    other["routed"] = [topic, 1, 1]  # a partition this worker does not own
    sweeper = Sweeper(kit.ctx)
    committed, assigned = {(topic, 0): 6, (topic, 1): 6}, {(topic, 0)}
    with kit.ctx.in_flight.batch([(topic, 0, 4, running["job_id"])]):
        resent = run(sweeper.resend_lost(committed, assigned, time.time()))
    assert resent == [lost["job_id"]]
    [again] = kit.topics.logs[topic]
    assert job_request_from_dict(json.loads(again.value)).job_id == lost["job_id"]
    # the lost job is re-sent once per IMGPIPE_SWEEP_STALE_AFTER, not at every sweep; the
    # running one is lost once its batch ended without finishing it
    assert run(sweeper.resend_lost(committed, assigned, time.time())) == [running["job_id"]]


class HeldBatch(list):
    """A batch as faustcompat.TakenEvents gives it: the agent holds its acks and acks it
    when handled. Records which job ids had a result on the results topic at ack time."""

    def __init__(self, events, kit, acked):
        super().__init__(events)
        self.kit, self.acked, self.held = kit, acked, False

    def hold(self):
        self.held = True

    async def ack(self):
        results = {r["job_id"] for r in self.kit.topics.values(self.kit.names.results)}
        self.acked.append(([e.key.decode() for e in self], results))


async def batches_of(*batches):
    for batch in batches:
        yield batch


def test_held_batches_run_together_and_ack_only_once_finished(kit, tmp_path):
    jobs = [work_event(kit, request_dict(kit, tmp_path, f"h{i}")) for i in range(4)]
    acked: list = []
    first = HeldBatch([e for _, e in jobs[:2]], kit, acked)
    second = HeldBatch([e for _, e in jobs[2:]], kit, acked)
    run(process_batches(kit.ctx, "normal", batches_of(first, second)))
    assert first.held and second.held
    assert sorted(ids for batch in acked for ids in batch[0]) == sorted(j for j, _ in jobs)
    for ids, results_then in acked:  # acked after the batch's results were sent
        assert set(ids) <= results_then
    assert {kit.table[j]["status"] for j, _ in jobs} == {"DONE"}


def test_a_job_in_two_held_batches_runs_once(kit, tmp_path):
    job_id, event = work_event(kit, request_dict(kit, tmp_path, "twice"))
    _, copy = work_event(kit, request_dict(kit, tmp_path, "twice"))
    acked: list = []
    run(process_batches(kit.ctx, "normal", batches_of(HeldBatch([event], kit, acked),
                                                       HeldBatch([copy], kit, acked))))
    state = kit.table[job_id]
    # the second batch waited for the first: no crash counted, one run, one result
    assert state["status"] == "DONE" and not state.get("crashes")
    assert [h["status"] for h in state["history"]].count("PROCESSING") == 1
    assert len(kit.topics.values(kit.names.results)) == 1 and len(acked) == 2
