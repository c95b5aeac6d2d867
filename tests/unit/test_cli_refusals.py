"""Command-line refusals: one line on stderr, exit 2, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def imgpipe(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args],
                          env={**clean, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("port", ["0", "70000", "-1", "http"])
def test_kafka_up_refuses_ports_outside_the_range(port, tmp_path):
    result = imgpipe("kafka", "up", "--port", port, "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing started or written


def test_a_worker_refuses_an_open_api_on_a_public_address(tmp_path):
    result = imgpipe("worker", IMGPIPE_WEB_BIND="0.0.0.0",
                     IMGPIPE_DATA_DIR=str(tmp_path / "w"),
                     IMGPIPE_BROKER="kafka://127.0.0.1:1")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert "IMGPIPE_API_TOKEN" in line and "IMGPIPE_ALLOW_OPEN_API" in line


def test_a_worker_with_a_broken_metadata_store_stops_before_joining(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = imgpipe("worker", IMGPIPE_METADATA_URL=f"sqlite:///{blocker}/sub/metadata.db",
                     IMGPIPE_OBJECT_STORE=f"file://{tmp_path / 'objects'}",
                     IMGPIPE_DATA_DIR=str(tmp_path / "w"),
                     IMGPIPE_BROKER="kafka://127.0.0.1:1")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("imgpipe: error:") and "IMGPIPE_METADATA_URL" in line


def test_a_bad_tokens_file_stops_the_worker_with_one_line(tmp_path):
    result = imgpipe("worker", IMGPIPE_API_TOKENS_FILE=str(tmp_path / "missing.json"),
                     IMGPIPE_DATA_DIR=str(tmp_path / "w"))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "IMGPIPE_API_TOKENS_FILE" in line


def test_token_new_prints_an_entry_the_worker_accepts(tmp_path):
    result = imgpipe("token", "new", "--tenant", "acme", "--priority", "low")
    assert result.returncode == 0
    path = tmp_path / "tokens.json"
    path.write_text('{"tokens": [' + result.stdout.strip() + "]}")
    check = imgpipe("config", IMGPIPE_API_TOKENS_FILE=str(path))
    assert check.returncode == 0
    bad = imgpipe("token", "new", "--tenant", "a/b")
    assert bad.returncode == 2 and "tenant" in bad.stderr


@pytest.mark.parametrize(("args", "reason"), [
    (["--job-id", "x/y"], "(bad_job_id); nothing was submitted"),
    (["--variant", "thumb=thumbnail:99999,webp"], "(bad_param); nothing was submitted"),
    (["--tenant", "a", "--job-id", "b:x"], "job_id names another tenant"),
    (["--variant", "thumb=explode,webp"], "unknown spec token 'explode'"),
    (["--label", "two\u2028lines"], "(bad_label); nothing was submitted"),
    (["--label", "x" * 201], "(bad_label); nothing was submitted"),
])
def test_submit_refuses_what_ingest_would_refuse_before_anything_is_stored(args, reason,
                                                                          tmp_path):
    image = tmp_path / "photo.png"
    from tests.images import encode, quadrants

    image.write_bytes(encode(quadrants(40, 30)))
    objects = tmp_path / "objects"
    # no broker at all: the refusal comes before any Kafka connection
    result = imgpipe("submit", str(image), *args, "--wait",
                     IMGPIPE_BROKER="kafka://127.0.0.1:1",
                     IMGPIPE_OBJECT_STORE=f"file://{objects}",
                     IMGPIPE_METADATA_URL=f"sqlite:///{tmp_path / 'm.db'}")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert reason in line and "Traceback" not in line
    assert not [p for p in objects.rglob("*") if p.is_file()]  # no claim check left


def test_a_submit_that_cannot_reach_the_broker_leaves_no_sources_behind(tmp_path):
    from tests.images import encode, quadrants

    image = tmp_path / "photo.png"
    image.write_bytes(encode(quadrants(40, 30)))
    objects = tmp_path / "objects"
    result = imgpipe("submit", str(image), IMGPIPE_BROKER="kafka://127.0.0.1:1",
                     IMGPIPE_OBJECT_STORE=f"file://{objects}",
                     IMGPIPE_METADATA_URL=f"sqlite:///{tmp_path / 'm.db'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not [p for p in objects.rglob("*") if p.is_file()]


def test_a_worker_on_a_taken_web_port_says_which_option_to_use(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = imgpipe("worker", "--web-port", port, IMGPIPE_BROKER="kafka://127.0.0.1:1",
                         IMGPIPE_DATA_DIR=str(tmp_path / "w"),
                         IMGPIPE_OBJECT_STORE=f"file://{tmp_path / 'objects'}",
                         IMGPIPE_METADATA_URL=f"sqlite:///{tmp_path / 'm.db'}")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert f"port {port}" in line and "--web-port" in line


def test_a_worker_without_a_broker_says_so_in_one_line(tmp_path):
    from pipeline.kafka.local import free_port

    dead = free_port()  # nothing listens there
    result = imgpipe("worker", IMGPIPE_BROKER=f"kafka://127.0.0.1:{dead}",
                     IMGPIPE_DATA_DIR=str(tmp_path / "w"),
                     IMGPIPE_OBJECT_STORE=f"file://{tmp_path / 'objects'}",
                     IMGPIPE_METADATA_URL=f"sqlite:///{tmp_path / 'm.db'}")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert "cannot reach Kafka" in line and "imgpipe kafka up" in line


def test_settings_are_checked_before_anything_starts(tmp_path):
    result = imgpipe("config", IMGPIPE_TABLE_STORE="rocks://")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "imgpipe: error: IMGPIPE_TABLE_STORE='rocks://': use one of memory://, rocksdb://"]
    typo = imgpipe("config", IMGPIPE_WEB_PROT="7000")
    assert typo.returncode == 0
    assert "IMGPIPE_WEB_PROT is not an imgpipe setting and is ignored; did you mean " \
           "IMGPIPE_WEB_PORT?" in typo.stderr


def test_make_run_on_a_taken_port_says_how_to_run_it_on_another(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "demo", "--no-keep-running"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")},
                 "IMGPIPE_BROKER": f"kafka://127.0.0.1:{port}"},
            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert f"port {port}" in line and "IMGPIPE_BROKER=kafka://127.0.0.1:" in line
    assert "make run" in line and not (tmp_path / "var" / "kafka").exists()


def test_a_bad_log_level_names_the_variable():
    result = imgpipe("config", IMGPIPE_LOG_LEVEL="loud")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "IMGPIPE_LOG_LEVEL='loud'" in line and "info" in line
