import pytest

from pipeline.errors import ConfigError
from pipeline.settings import Settings


def test_defaults_run_on_a_laptop():
    s = Settings.from_env({})
    assert s.object_store == "file://./var/objects"
    assert s.metadata_url == "sqlite:///./var/metadata.db"
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.api_url == "http://127.0.0.1:6066"


def test_environment_overrides_and_types():
    s = Settings.from_env({"IMGPIPE_PARTITIONS": "12", "IMGPIPE_BATCH_WINDOW": "0.5",
                           "IMGPIPE_WEB_PORT": "7000",
                           "IMGPIPE_BROKER": "kafka://a:1;kafka://b:2"})
    assert (s.partitions, s.batch_window, s.web_port) == (12, 0.5, 7000)
    assert s.bootstrap_servers == "a:1,b:2"
    assert s.api_url == "http://127.0.0.1:7000"
    assert s.priority_topic("high") == "imgpipe.jobs.high"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("IMGPIPE_PARTITIONS", "many", "must be an integer"),
    ("IMGPIPE_PARTITIONS", "0", "must be >= 1"),
    ("IMGPIPE_BATCH_WINDOW", "soon", "must be a number"),
])
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert name in info.value.message and message in info.value.message


def test_secrets_are_masked_when_printed():
    s = Settings.from_env({"IMGPIPE_API_TOKEN": "hunter2"})
    assert s.api_token == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)
    assert ("IMGPIPE_API_TOKEN", "********") in [(n, v) for n, v, _ in s.describe()]


def test_agent_roles_are_checked():
    assert Settings.from_env({}).agent_roles == {"ingest", "process", "retry"}
    assert Settings.from_env({"IMGPIPE_AGENTS": " ingest "}).agent_roles == {"ingest"}
    for bad in ("ingest,bogus", ","):
        with pytest.raises(ConfigError, match="IMGPIPE_AGENTS"):
            Settings.from_env({"IMGPIPE_AGENTS": bad})


@pytest.mark.parametrize(("roles", "agents"), [
    ("ingest", ["ingest"]),
    ("process,retry", ["process-high", "process-normal", "process-low", "retry"]),
])
def test_a_worker_runs_only_the_agents_of_its_roles(roles, agents):
    import os
    import subprocess
    import sys

    code = "from pipeline.worker.app import app; app.discover(); print(','.join(app.agents))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "IMGPIPE_AGENTS": roles}, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1].split(",") == agents
