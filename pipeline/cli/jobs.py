"""imgpipe submit and status."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.cli.common import local_time, print_jobs, progress, say, settings_from_env
from pipeline.metadata.base import DEFAULT_DISTANCE, MAX_DISTANCE


@click.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--variant", "variants", multiple=True, metavar="NAME=SPEC",
              help="e.g. thumb=fit:256x256,webp:q80 (repeatable; default thumb + large).")
@click.option("--preset", default=None, metavar="NAME",
              help="A named variant set of IMGPIPE_RULES_FILE instead of --variant.")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default=None,
              help="Default: the tenant's rule (IMGPIPE_TENANT_PRIORITIES), else normal.")
@click.option("--tenant", default=None,
              help="Default: the tenant of IMGPIPE_API_TOKEN's token (admins: any).")
@click.option("--force", is_flag=True, help="Reprocess even if the job is already DONE.")
@click.option("--job-id", "job_ids", multiple=True,
              help="Job id per path, in order (default: the file's stem and a random part,"
                   " e.g. IMG_0001-3fa2b19c0d4e).")
@click.option("--label", default=None, metavar="TEXT",
              help="Your words for these jobs, kept and shown with them (<= 200 chars).")
@click.option("--wait", is_flag=True, help="Wait for every job to finish.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds --wait waits.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of jobs.")
def submit(paths, variants, preset, priority, tenant, force, job_ids, label, wait, timeout,
           as_json) -> None:
    """Store images in the object store and submit one job per image."""
    from pipeline.cli.client import (
        ApiClient,
        cli_principal,
        job_summary,
        produce_requests,
        remove_sources,
        store_sources,
    )
    from pipeline.models import (
        TENANT_RE,
        JobRequest,
        Status,
        display_name,
        readable_job_id,
    )
    from pipeline.ops import parse_variant_specs

    settings = settings_from_env()
    if job_ids and len(job_ids) != len(paths):
        raise click.UsageError(f"--job-id given {len(job_ids)} times for {len(paths)} paths")
    if tenant is not None and not TENANT_RE.match(tenant):
        raise click.BadParameter("1-64 letters, digits, '.', '_' or '-'", param_hint="--tenant")
    if preset and variants:
        raise click.UsageError("give --preset or --variant, not both")
    # What every job of this submission asks for (each adds its id, source and name).
    # A preset is expanded here, from the same rules file the workers read, so that
    # what ingest would refuse is refused before anything is stored.
    common = {"variants": preset_variants(settings, preset) if preset
              else parse_variant_specs(variants), "preset": preset, "priority": priority,
              "tenant": tenant, "force": force, "label": label}
    names = [display_name(path.name) for path in paths]
    # Without --tenant the jobs are the token's tenant's; their sources are stored in
    # that tenant's area, the only one its jobs may read (docs/api.md#tenants).
    sender = cli_principal(settings)
    ids = owned_ids(paths, job_ids or [readable_job_id(n) for n in names],
                    tenant or sender.tenant)
    check_like_ingest(settings, paths, ids, names, common, sender)
    submissions = store_sources(settings, paths, ids)
    requests = [JobRequest(job_id=s.job_id, source=s.source, name=name, **common)
                for s, name in zip(submissions, names, strict=True)]
    try:
        produce_requests(settings, requests, progress("submitted"), sender)
    except BaseException:
        remove_sources(settings, submissions)  # nothing was sent: leave nothing behind
        raise
    if not wait:
        rows = [{"job_id": s.job_id, "path": s.path, "name": name, "label": label,
                 "status": "SUBMITTED", "error": None, "outputs": []}
                for s, name in zip(submissions, names, strict=True)]
        print_jobs(rows, as_json)
        return
    states = ApiClient(settings).wait_for(ids, timeout, progress("finished"))
    rows = [{**job_summary(job_id, states[job_id]), "path": str(path)}
            for job_id, path in zip(ids, paths, strict=True)]
    print_jobs(rows, as_json)
    say(summary_line(rows, settings.object_store))
    if any(row["status"] != Status.DONE for row in rows):
        sys.exit(1)


def preset_variants(settings, preset: str) -> dict:
    """The variants of ``preset`` in IMGPIPE_RULES_FILE (ConfigError if unknown)."""
    from pipeline.errors import ConfigError, InvalidRequest
    from pipeline.jobs.rules import load_rules
    from pipeline.ops import Limits

    rules = load_rules(settings.rules_file, Limits(max_output_pixels=settings.max_output_pixels),
                       settings.max_variants)
    try:
        return rules.preset(preset)
    except InvalidRequest as exc:
        hint = "" if settings.rules_file else (" (IMGPIPE_RULES_FILE is not set: point it at "
                                               "the workers' rules file)")
        raise ConfigError(exc.message + hint) from None


def summary_line(rows: list[dict], object_store: str) -> str:
    """``3 jobs: 2 DONE, 1 FAILED; outputs under <store>/outputs/`` (for stderr)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"{len(rows)} job{'s' if len(rows) != 1 else ''}: {parts}; outputs under "
            f"{object_store.rstrip('/')}/outputs/")


def owned_ids(paths, job_ids, tenant: str) -> list[str]:
    """Each job's id qualified by the tenant that will own it (its sources are stored
    in that tenant's area); InvalidRequest naming the file for a bad id."""
    from pipeline.errors import ImgpipeError
    from pipeline.models import qualify_job_id

    ids = []
    for path, job_id in zip(paths, job_ids, strict=True):
        try:
            ids.append(qualify_job_id(tenant, job_id))
        except ImgpipeError as exc:
            exc.message = f"{path}: {exc.message} ({exc.code}); nothing was submitted"
            raise
    return ids


def check_like_ingest(settings, paths, ids, names, common, sender) -> None:
    """Run ingest's admission on every job before anything is stored or sent, so what
    ingest would refuse (a bad label too) is refused here (exit 2, the reason, the
    file)."""
    from pipeline.cli.client import check_source_size, source_key_of
    from pipeline.errors import ImgpipeError
    from pipeline.worker.runtime import Runtime

    runtime = Runtime(settings)
    try:
        for path, job_id, name in zip(paths, ids, names, strict=True):
            try:
                check_source_size(settings, path)
                request = {k: v for k, v in common.items() if v is not None}
                request.update(job_id=job_id, name=name, source=runtime.object_store.uri_for(
                    source_key_of(path, job_id)))
                runtime.admission.admit(json.dumps(request).encode(), sender)
            except ImgpipeError as exc:
                exc.message = f"{path}: {exc.message} ({exc.code}); nothing was submitted"
                raise
    finally:
        runtime.close()


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def status(job_id: str, as_json: bool) -> None:
    """Show one job's state (asks a worker's API)."""
    from pipeline.cli.client import ApiClient, job_summary

    state = ApiClient(settings_from_env()).job(job_id)
    row = job_summary(job_id, state)
    if as_json:
        click.echo(json.dumps(row, indent=2))
    else:
        print_jobs([row], False)
        if row.get("replays"):
            click.echo(f"    replayed {row['replays']} time(s)")
        for entry in (state or {}).get("history", []):
            click.echo(f"    {entry['status']:<11} at {local_time(entry.get('at'))}")
    sys.exit(0 if row["status"] == "DONE" else 1)


@click.command()
@click.argument("job_id")
@click.option("--max-distance", type=click.IntRange(0, MAX_DISTANCE), default=DEFAULT_DISTANCE,
              show_default=True,
              help="Most differing pHash bits (resized or recompressed copies: 0-10).")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def similar(job_id: str, max_distance: int, limit: int, as_json: bool) -> None:
    """List earlier uploads (of your tenant) that look like JOB_ID's source."""
    from pipeline.cli.client import ApiClient

    answer = ApiClient(settings_from_env()).similar(job_id, max_distance, limit)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    found = answer["similar"]
    click.echo(f"{len(found)} job(s) within {max_distance} bits of {answer['job_id']} "
               f"(pHash {answer['phash']})")
    for job in found:
        click.echo(f"  {job['distance']:>2}  {job['job_id']}  {job.get('name') or ''}  "
                   f"{local_time(job.get('updated_at'))}")


COMMANDS = [submit, status, similar]
