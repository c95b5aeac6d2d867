"""imgpipe drained: exit 0 only when the workers' stats show no lag, no unfinished job
and no worker that failed to answer; --wait follows the stats until then (a real HTTP
server on 127.0.0.1 plays the old generation's API)."""

from __future__ import annotations

from click.testing import CliRunner

from pipeline.cli.main import cli
from tests.unit.test_api_client import QuietHandler, serving

BUSY = {"lag_by_topic": {"ingest": 3, "jobs.normal": 0}, "errors": [],
        "lag": [{"topic": "p.ingest", "partition": 2, "lag": 3},
                {"topic": "p.jobs.normal", "partition": 0, "lag": 0}],
        "jobs": {"QUEUED": 2, "DONE": 40, "RETRYING": 1}}
QUIET = {"lag_by_topic": {"ingest": 0}, "errors": [], "jobs": {"DONE": 45, "FAILED": 1}}
#: What GET /api/jobs?status=S answers (the first page of jobs in that status).
LISTS = {"QUEUED": ["q1", "q2"], "RETRYING": ["r1"]}
HALF = {**QUIET, "errors": ["http://10.0.0.2:6066: timed out"]}


def stats_api(answers: list[dict]):
    """Serves ``answers`` in turn to GET /api/stats (the last one from then on)."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/api/jobs?status="):
                status = self.path.split("=")[1].split("&")[0]
                self.answer(200, {"jobs": [{"job_id": j} for j in LISTS.get(status, [])]})
                return
            self.answer(200, answers.pop(0) if len(answers) > 1 else answers[0])

    return serving(Handler)


def drained(url: str, *args: str):
    return CliRunner().invoke(cli, ["drained", *args], env={"IMGPIPE_API_URL": url})


def test_work_left_is_not_drained_and_says_what_is_left():
    with stats_api([BUSY]) as url:
        result = drained(url)
    assert result.exit_code == 1
    assert "3 records to consume, 3 jobs unfinished (2 QUEUED, 1 RETRYING)" in result.output
    assert "partitions behind: p.ingest/2 (3)" in result.output
    assert "jobs: q1 (QUEUED), q2 (QUEUED), r1 (RETRYING)" in result.output


def test_a_worker_that_did_not_answer_keeps_it_from_drained():
    with stats_api([HALF]) as url:
        result = drained(url)
    assert result.exit_code == 1 and "10.0.0.2:6066" in result.output


def test_wait_follows_the_stats_until_drained():
    with stats_api([BUSY, BUSY, QUIET]) as url:
        result = drained(url, "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "drained: every record consumed" in result.output


def test_stats_without_lag_need_an_admin_token():
    with stats_api([{"by_status": {}, "errors": []}]) as url:
        result = drained(url)
    assert result.exit_code == 1 and "admin token" in result.output
