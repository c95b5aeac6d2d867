"""`imgpipe replay` on the real broker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.dev.samples import write_samples
from pipeline.metadata import open_metadata_store
from pipeline.objects import open_object_store
from pipeline.objects.local import path_from_file_uri
from tests.kafkautil import produce_raw, read_topic
from tests.runtimes import SOURCES

pytestmark = pytest.mark.kafka

VARIANTS = {"a": [{"op": "thumbnail", "size": 64}, {"op": "encode", "format": "png"}],
            "b": [{"op": "resize", "width": 120}, {"op": "encode", "format": "jpeg"}]}


def job(job_id: str, source: str, tenant: str = "default") -> tuple[bytes, bytes]:
    return job_id.encode(), json.dumps({"job_id": job_id, "source": source,
                                        "variants": VARIANTS, "tenant": tenant}).encode()


def wait_status(env, ids, wanted, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        states = {j: env.cli_json("status", j, "--json")[1] for j in ids}
        if all(s["status"] == wanted for s in states.values()):
            return states
        assert time.monotonic() < deadline, {j: s["status"] for j, s in states.items()}
        time.sleep(0.5)


def test_replaying_the_dlq_after_the_fault_is_fixed_completes_every_job(pipeline, tmp_path):
    settings = pipeline.settings
    store = open_object_store(settings.object_store)
    ids = [f"dlq-{i}" for i in range(5)]
    keys = {j: f"{SOURCES}/late/{j}/src.jpg" for j in ids}
    produce_raw(settings.bootstrap_servers, settings.topic("ingest"),
                [job(j, store.uri_for(keys[j])) for j in ids])
    failed = wait_status(pipeline, ids, "FAILED")
    assert {s["error_code"] for s in failed.values()} == {"source_not_found"}
    dlq_before = read_topic(settings.bootstrap_servers, settings.topic("dlq"))

    [image] = write_samples(tmp_path, 1, 320, 240)  # the fix: the sources arrive
    for key in keys.values():
        store.put(key, image.read_bytes(), "image/jpeg")
    code, summary = pipeline.cli_json("replay", "--topic", "dlq", "--from-beginning",
                                      "--filter", "reason=source_not_found,job_id=dlq-*",
                                      "--json")
    assert code == 0 and summary["sent"] == 5 and summary["matched"] == 5, summary
    done = wait_status(pipeline, ids, "DONE")
    assert all(s["attempts"] == 1 and len(s["outputs"]) == 2 for s in done.values())
    # the DLQ keeps its records: replay never deletes from or commits on the source
    assert read_topic(settings.bootstrap_servers, settings.topic("dlq")) == dlq_before


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    async def run():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def window(pipeline, tmp_path_factory):
    """Three bursts on the ingest topic; the middle one's time window."""
    settings = pipeline.settings
    store = open_object_store(settings.object_store)
    [image] = write_samples(tmp_path_factory.mktemp("win"), 1, 320, 240)
    # the jobs are tenant acme's: their source is in acme's upload area
    source = store.put(f"{SOURCES}/tenant=acme/window/src.jpg", image.read_bytes(),
                       "image/jpeg")
    bursts = {}
    for name, count in (("before", 5), ("inside", 7), ("after", 4)):
        if name == "inside":
            time.sleep(1.5)
            start = time.time()
        bursts[name] = [f"acme:win-{name}-{i}" for i in range(count)]  # tenant-qualified
        produce_raw(settings.bootstrap_servers, settings.topic("ingest"),
                    [job(j, source, tenant="acme") for j in bursts[name]])
        if name == "inside":
            end = time.time()
            time.sleep(1.5)
    wait_status(pipeline, [j for ids in bursts.values() for j in ids], "DONE")
    return bursts, start, end


def test_time_window_resends_exactly_its_events(pipeline, window):
    bursts, start, end = window
    settings = pipeline.settings
    scratch = f"{settings.topic_prefix}.scratch"
    _create_topic(settings.bootstrap_servers, scratch, settings.partitions)
    code, summary = pipeline.cli_json(
        "replay", "--topic", "ingest", "--from-time", f"{start:.3f}", "--to-time",
        f"{end:.3f}", "--target", scratch, "--json")
    assert code == 0 and summary["sent"] == len(bursts["inside"]), summary
    copied = read_topic(settings.bootstrap_servers, scratch, headers=True)
    assert sorted(r["value"]["job_id"] for r in copied) == sorted(bursts["inside"])
    # each record as it was (replay signs no job), with the operator's replay marker:
    # where it came from, and no force (ingest applies both)
    for record in copied:
        assert "replayed_from" not in record["value"] and "force" not in record["value"]
        marker = json.loads(record["headers"]["imgpipe-replay"].split(" ", 3)[3])
        assert marker["topic"] == settings.topic("ingest") and marker["force"] is False


def test_dry_run_sends_nothing_and_force_reprocesses_without_duplicates(pipeline, window):
    bursts, start, end = window
    settings = pipeline.settings
    ids = bursts["inside"]
    args = ["replay", "--topic", "ingest", "--from-time", f"{start:.3f}", "--to-time",
            f"{end:.3f}", "--filter", "tenant=acme,job_id=acme:win-inside-*", "--json"]
    ingest_before = len(read_topic(settings.bootstrap_servers, settings.topic("ingest")))
    code, dry = pipeline.cli_json(*args, "--dry-run")
    assert code == 0 and dry["sent"] == 0 and dry["would_send"] == len(ids)
    assert len(read_topic(settings.bootstrap_servers, settings.topic("ingest"))) == ingest_before

    metadata = open_metadata_store(settings.metadata_url)
    rows_before = metadata.count_rows()
    outputs_dir = path_from_file_uri(settings.object_store) / "outputs"
    files_before = sorted(outputs_dir.rglob("*.*"))
    history_before = {j: pipeline.cli_json("status", j, "--json")[1]["history"] for j in ids}

    code, plain = pipeline.cli_json(*args)  # DONE jobs, not forced: nothing reprocessed
    assert code == 0 and plain["sent"] == len(ids)
    code, forced = pipeline.cli_json(*args, "--force")
    assert code == 0 and forced["sent"] == len(ids)

    deadline = time.monotonic() + 90
    while True:
        states = {j: pipeline.cli_json("status", j, "--json")[1] for j in ids}
        dones = {j: [h["status"] for h in s["history"]].count("DONE") for j, s in states.items()}
        if all(n == 2 and states[j]["status"] == "DONE" for j, n in dones.items()):
            break
        assert time.monotonic() < deadline, dones
        time.sleep(0.5)
    for j in ids:  # the unforced replay was answered from the table: exactly one rerun
        assert len(states[j]["history"]) == len(history_before[j]) + 3  # QUEUED, PROC, DONE
    assert {s["replays"] for s in states.values()} == {1}  # the forced replay, as status shows
    assert metadata.count_rows() == rows_before
    assert sorted(outputs_dir.rglob("*.*")) == files_before


@pytest.mark.parametrize(("args", "message"), [
    (["--topic", "no-such-topic", "--from-beginning"], "does not exist"),
    (["--topic", "ingest", "--from-offset", "9", "--to-offset", "3"], "after --to-offset"),
    (["--topic", "ingest", "--from-time", "last tuesday"], "bad time"),
    (["--topic", "ingest"], "exactly one"),
    (["--topic", "ingest", "--from-beginning", "--partition", "99"], "no partition"),
    (["--topic", "ingest", "--from-beginning", "--filter", "colour=red"], "bad filter"),
])
def test_bad_arguments_fail_clearly(pipeline, args, message):
    result = pipeline.cli("replay", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "sent" not in result.stdout
