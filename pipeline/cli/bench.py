"""imgpipe bench: the benchmark suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from pipeline.cli.common import parse_size, say


@click.group(invoke_without_command=True)
@click.option("--images", type=click.IntRange(min=1), default=48, show_default=True,
              help="Generated photos (each processed --rounds times per phase).")
@click.option("--size", default="1920x1080", show_default=True, help="Photo size WxH.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pipeline workers; each gets cores/K image threads.")
@click.option("--rounds", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--profile", type=click.Path(path_type=Path), default=None,
              help="py-spy the first worker during B into this raw file and summarise.")
@click.option("--timeline", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Trace worker 1's batches and jobs during B into this folder and show "
                   "where its image threads idled.")
@click.option("--preset", type=click.Choice(["heavy", "fit512", "thumb", "pair"]),
              default="heavy", show_default=True,
              help="The job: heavy (5 variants), fit512 (fit 512 JPEG q80), thumb (256 px "
                   "WebP), pair (thumb + 1280 px JPEG).")
@click.option("--variant", "variants", multiple=True, metavar="NAME=SPEC",
              help="Your own job instead of a preset (repeatable, as in submit).")
@click.pass_context
def bench(ctx: click.Context, images: int, size: str, workers: int, rounds: int,
          json_path: Path | None, profile: Path | None, timeline: Path | None, preset: str,
          variants: tuple[str, ...]) -> None:
    """Benchmarks that print ratios against a baseline from the same run.

    Without a subcommand: the full pipeline against the bare OpenCV loop on the same
    cores (A/B/A), with CPU per image, idle latency, peak memory and record sizes.
    """
    if ctx.invoked_subcommand is None:
        from pipeline.bench.workloads import workload

        _bench_full(images, parse_size(size), workers, rounds, json_path, profile,
                    workload(preset, variants), timeline)


def _bench_full(images: int, size: tuple[int, int], workers: int, rounds: int,
                json_path: Path | None, profile: Path | None, task,
                timeline: Path | None = None) -> None:
    from pipeline.bench.full import CLAIM_CHECK_BYTES, measure
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.report import finish, print_table

    if profile:
        from pipeline.bench.profile import py_spy

        py_spy()  # fail before starting anything
    threads = max(1, (os.cpu_count() or 1) // workers)
    tracing = {"IMGPIPE_TIMELINE": str(timeline.resolve())} if timeline else {}
    with bench_pipeline(echo=say, IMGPIPE_IMAGE_THREADS=str(threads), **tracing) as pipe:
        r = measure(pipe, images, size, workers, rounds, say, profile, task, threads)
    mb = ", ".join(f"{v:.0f}" for v in r["peak_rss_mb_per_worker"])
    print_table(f"pipeline vs {task.baseline}: {r['images']} x {r['size']} photos x {rounds}, "
                f"{task.name} ({len(task.variants)} variant(s)), {r['cores']} cores, "
                f"{workers} worker(s) x {threads} threads", [
        (f"{task.baseline} (A, A')", f"{r['bare_images_per_s']:8.2f} images/s  "
                              f"(A {r['bare_a_images_per_s']:.2f}, "
                              f"A' {r['bare_b_images_per_s']:.2f})"),
        ("pipeline (B)", f"{r['pipeline_images_per_s']:8.2f} images/s"),
        ("efficiency B / A", f"{r['efficiency']:8.3f}  (goal >= 0.90, stretch 0.95)"),
        ("CPU s/image bare / workers", f"{r['bare_cpu_s_per_image']:8.4f} / "
                                       f"{r['pipeline_cpu_s_per_image']:.4f}"),
        ("glue share of worker CPU", f"{r['glue_cpu_share']:8.1%}  (goal <= 5%)"),
        ("broker CPU s/image", f"{r['broker_cpu_s_per_image']:8.4f}  (not in the glue)"),
        ("client CPU s/image", f"{r['client_cpu_s_per_image']:8.4f}  (the submitter, "
                               "not in the fixed CPU)"),
        ("cores idle during B", f"{r['machine_idle_share']:8.1%}"),
        *([("image work / pipeline CPU", f"{r['image_share_of_pipeline_cpu']:8.3f}  (B alone: "
            "the efficiency if the cores were saturated; machine drift cancels)")]
          if r["image_share_of_pipeline_cpu"] is not None else []),
        ("fixed CPU per job", f"{r['fixed_cpu_ms_per_job']:8.1f} ms  (workers + broker - "
                              "baseline)"),
        ("  beyond idle", f"{r['fixed_cpu_ms_per_job_beyond_idle']:8.1f} ms  (idle: "
                          f"{r['idle_cpu_ms_per_s']:.0f} ms of CPU per second)"),
        ("idle p50 / bare single image", f"{r['idle_p50_s'] * 1000:8.0f} / "
                                         f"{r['bare_single_image_s'] * 1000:.0f} ms  "
                                         f"= {r['idle_p50_over_bare_single']:.2f}x "
                                         "(goal <= 1.25x)"),
        ("peak RSS per worker (12 MP)", f"{mb:>8} MiB  (goal <= 400)"),
        ("largest Kafka record", f"{r['largest_record_bytes']:8d} B  in "
                                 f"{r['largest_record_topic']}  "
                                 f"(claim check: <= {CLAIM_CHECK_BYTES})"),
    ])
    if profile:
        from pipeline.bench.profile import summarise

        shares = summarise(profile)
        r["profile"] = dict(shares)
        print_table(f"where worker 1's time went during B (py-spy, {profile})",
                    [(name, f"{share:6.1%}") for name, share in shares])
    print_table("worker 1's busiest threads during B: share of the time on a core / "
                "runnable, waiting for a core / blocked (GIL, locks, I/O, no work)", [
                    (t["thread"], f"{t['on_cpu']:6.1%} / {t['waiting_for_core']:6.1%} / "
                                  f"{t['blocked']:6.1%}") for t in r["worker_threads"]])
    if timeline:
        _print_timeline(timeline / f"{r['worker_pids'][0]}.tsv", r["main_window"], threads, r)
    finish("pipeline", r, json_path)


def _print_timeline(path: Path, window: tuple[float, float], threads: int, r: dict) -> None:
    from pipeline.bench.report import print_table
    from pipeline.bench.timeline import idle_causes, read, render_ms

    line_ = read(path)
    utilisation, idle = idle_causes(line_, *window, threads)
    total = sum(idle.values()) or 1.0
    wall, cpu = render_ms(line_, *window)
    r["timeline"] = {"thread_utilisation": utilisation, "render_wall_ms": wall,
                     "render_cpu_ms": cpu, "idle_thread_s": dict(idle)}
    print_table(f"worker 1's image threads during B ({path}): busy {utilisation:.1%}; a "
                f"render takes {wall:.1f} ms wall, {cpu:.1f} ms CPU; idle thread-seconds by "
                "what the batches in hand were doing", [
                    (label, f"{seconds:7.2f} s  {seconds / total:6.1%}")
                    for label, seconds in idle.most_common(12)])


@bench.command("ops")
@click.option("--images", type=int, default=12, show_default=True)
@click.option("--size", default="1920x1080", show_default=True, help="Source size WxH.")
@click.option("--rounds", type=int, default=2, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_ops(images: int, size: str, rounds: int, json_path: Path | None) -> None:
    """Engine vs a bare OpenCV loop (goal >= 0.95), and the 12 MP thumbnail fast path."""
    from pipeline.bench.ops import (
        VARIANTS,
        EngineBench,
        bare_opencv,
        fast_path_speedup,
        feature_costs,
        images_per_second,
        make_jpegs,
        tag_jpeg,
    )
    from pipeline.bench.report import finish, print_table
    from pipeline.imaging.iccbuild import DISPLAY_P3, rgb_profile

    width, height = parse_size(size)
    click.echo(f"generating {images} {width}x{height} photos...", err=True)
    data = make_jpegs(images, width, height)
    engine = EngineBench.create(VARIANTS)
    requests = engine.load(data)
    engine.run(requests[0]), bare_opencv(data[0])  # warm up
    click.echo("running bare / engine / bare ...", err=True)
    bare_a = images_per_second(bare_opencv, data, rounds)
    engine_rate = images_per_second(engine.run, requests, rounds)
    bare_b = images_per_second(bare_opencv, data, rounds)
    bare = (bare_a + bare_b) / 2
    click.echo("running the engine on the same photos tagged Display P3 ...", err=True)
    tagged = engine.load([tag_jpeg(d, rgb_profile(DISPLAY_P3)) for d in data])
    engine.run(tagged[0])  # builds the one P3 transform, as the first photo of a camera does
    tagged_rate = images_per_second(engine.run, tagged, rounds)
    click.echo("running the 12 MP thumbnail fast path ...", err=True)
    full, fast = fast_path_speedup((4000, 3000), max(3, images // 3))
    click.echo("timing each optional feature on the same photos ...", err=True)
    costs = feature_costs(data, rounds)
    results = {"feature_ms_per_image": costs,
               "bare_images_per_s": bare, "engine_images_per_s": engine_rate,
               "engine_vs_bare": engine_rate / bare, "engine_p3_tagged_per_s": tagged_rate,
               "p3_tagged_vs_untagged": tagged_rate / engine_rate,
               "thumb_12mp_full_decode_per_s": full,
               "thumb_12mp_fast_path_per_s": fast, "fast_path_speedup": fast / full}
    print_table(f"ops: {len(VARIANTS)} variants per {width}x{height} JPEG, one thread", [
        ("bare OpenCV loop", f"{bare:7.2f} images/s  (A {bare_a:.2f}, A' {bare_b:.2f})"),
        ("imgpipe engine", f"{engine_rate:7.2f} images/s"),
        ("engine / bare", f"{engine_rate / bare:7.3f}  (goal >= 0.95)"),
        ("engine, Display P3 sources", f"{tagged_rate:7.2f} images/s  "
         f"({tagged_rate / engine_rate:.3f} of untagged: the cost of converting to sRGB)"),
        ("12 MP thumbnail, full decode", f"{full:7.2f} images/s"),
        ("12 MP thumbnail, fast path", f"{fast:7.2f} images/s"),
        ("fast-path speedup", f"{fast / full:7.2f}x  (goal >= 3x)"),
    ])
    print_table("what each feature adds per image (ms, one thread; always-on ones are in "
                "the engine figure above)", [(name, f"{ms:7.2f} ms") for name, ms in costs.items()])
    finish("ops", results, json_path)


@bench.command("metadata")
@click.option("--jobs", type=int, default=400, show_default=True)
@click.option("--batch", type=int, default=16, show_default=True,
              help="Jobs per processing batch (one commit each when batched).")
def bench_metadata(jobs: int, batch: int) -> None:
    """Metadata writes: one commit per job vs one per batch, SQLite and Spanner."""
    from pipeline.bench.metadata import measure
    from pipeline.bench.report import finish, print_table

    results = measure(jobs, batch)
    rows = []
    for backend, r in results.items():
        rows += [(f"{backend} per-row commits", f"{r['per_row']:9.1f} jobs/s"),
                 (f"{backend} one commit per batch", f"{r['batched']:9.1f} jobs/s  "
                  f"({r['batched'] / r['per_row']:.1f}x)")]
    print_table(f"metadata: {jobs} jobs with 2 outputs each, batches of {batch}", rows)
    finish("metadata", results, None)


@bench.command("priority")
@click.option("--high", "highs", type=int, default=40, show_default=True,
              help="High-priority jobs per phase.")
@click.option("--interval", type=float, default=0.25, show_default=True,
              help="Seconds between high-priority submissions.")
@click.option("--backlog", type=int, default=600, show_default=True,
              help="Low-priority jobs queued for the second phase.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_priority(highs: int, interval: float, backlog: int, json_path: Path | None) -> None:
    """High-priority latency on an idle worker vs under a low-priority backlog."""
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.priority import measure
    from pipeline.bench.report import finish, print_table

    with bench_pipeline(echo=say) as pipe:
        pipe.start_worker()
        results = measure(pipe, highs, interval, backlog, say)
    idle, loaded = results["idle"], results["backlog"]
    print_table(f"priority: {highs} high jobs every {interval}s, idle vs {backlog} low queued", [
        ("idle p50 / p99", f"{idle['p50'] * 1000:7.0f} / {idle['p99'] * 1000:.0f} ms"),
        ("backlog p50 / p99", f"{loaded['p50'] * 1000:7.0f} / {loaded['p99'] * 1000:.0f} ms"),
        ("p99 backlog / p99 idle", f"{results['p99_backlog_over_p99_idle']:7.2f}  (goal <= 2)"),
        ("p99 backlog / p50 idle", f"{results['p99_backlog_over_p50_idle']:7.2f}  "
                                   "(issue 10 goal <= 2)"),
        ("low jobs done meanwhile", f"{loaded['low_done_during']:7d}  (starvation guard)"),
    ])
    finish("priority", results, json_path)


@bench.command("scale")
@click.option("--jobs", type=int, default=120, show_default=True,
              help="Jobs per measured phase (1920x1080 sources, 5 variants each).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_scale(jobs: int, json_path: Path | None) -> None:
    """Throughput with 1 vs 2 workers, against the bare loop's 1 vs 2 processes."""
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.report import finish, print_table
    from pipeline.bench.scale import measure

    with bench_pipeline(echo=say, IMGPIPE_IMAGE_THREADS="1",
                        IMGPIPE_PARTITIONS="8") as pipe:
        r = measure(pipe, jobs, say)
    print_table(f"scale: {jobs} jobs per phase, one image thread per worker", [
        ("bare loop 1 / 2 processes", f"{r['bare_1']:6.2f} / {r['bare_2']:.2f} images/s  "
                                      f"({r['bare_scaling']:.2f}x)"),
        ("pipeline 1 / 2 workers", f"{r['pipeline_1']:6.2f} / {r['pipeline_2']:.2f} jobs/s  "
                                   f"({r['pipeline_scaling']:.2f}x, goal >= 1.7)"),
        ("pipeline scaling / bare scaling", f"{r['scaling_vs_bare']:6.3f}  (goal >= 0.95)"),
        ("efficiency 1 / 2 (pipeline / bare)",
         f"{r['efficiency_1']:6.3f} / {r['efficiency_2']:.3f}"),
    ])
    finish("scale", r, json_path)


@bench.command("soak")
@click.option("--minutes", type=click.FloatRange(min=1), default=10.0, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_soak(minutes: float, json_path: Path | None) -> None:
    """Minutes at ~80% of capacity through a SIGKILL, a SIGTERM and a broker restart
    (`make soak`); exits 1 unless every criterion holds."""
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.report import finish, print_table
    from pipeline.bench.soak import measure

    with bench_pipeline(echo=say, IMGPIPE_IMAGE_THREADS="1", IMGPIPE_PARTITIONS="8",
                        IMGPIPE_SWEEP_STALE_AFTER="15") as pipe:
        r = measure(pipe, minutes, say)
    print_table("soak, per minute", [
        (f"minute {m['minute']}", f"done {m['done']}/{m['submitted']}  lag {m['lag']}  "
                                  f"{m['workers']}") for m in r["minutes"]])
    growth = ", ".join(f"{pid}: {g:.2f}x" for pid, g in r["rss_growth"].items())
    print_table(f"soak: {minutes} min at {r['rate_jobs_per_s']:.2f} jobs/s "
                f"(capacity {r['capacity_jobs_per_s']:.2f})", [
        ("every job DONE exactly once", f"{r['all_done_once']}  ({r['submitted']} jobs)"),
        ("RSS last / first minute", f"{r['rss_steady']}  ({growth}; goal <= 1.10x)"),
        ("drained after the end", f"{r['drained_in_a_minute']}  ({r['drain_seconds']:.0f} s;"
                                  " goal <= 60 s)"),
        ("stall check rescues", f"{r['stall_rescues']}  (expected 0: docs/scaling.md)"),
        ("passed", str(r["passed"])),
    ])
    finish("soak", r, json_path)
    if not r["passed"]:
        sys.exit(1)


@bench.command("ingest")
@click.option("--events", type=click.IntRange(min=2), default=20000, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def bench_ingest(events: int, json_path: Path | None) -> None:
    """Events/s through the ingest agent vs a raw aiokafka consumer (no image work)."""
    from pipeline.bench.harness import bench_pipeline
    from pipeline.bench.ingest import measure
    from pipeline.bench.report import finish, print_table

    with bench_pipeline(echo=say, IMGPIPE_AGENTS="ingest") as pipe:
        r = measure(pipe, events, say)
    print_table(f"ingest: {events} valid requests, one worker running only ingest", [
        ("raw aiokafka, no-op handler", f"{r['raw_events_per_s']:9.0f} events/s  "
                                        f"(A {r['raw_a']:.0f}, A' {r['raw_b']:.0f})"),
        ("ingest agent", f"{r['ingest_events_per_s']:9.0f} events/s  (goal >= 10000)"),
        ("ingest / raw", f"{r['ingest_vs_raw']:9.3f}  (goal >= 0.25)"),
    ])
    finish("ingest", r, json_path)


@bench.command("executor")
@click.option("--images", type=int, default=16, show_default=True)
@click.option("--size", default="1920x1080", show_default=True)
@click.option("--workers", type=int, default=0, help="Pool size (default: CPU count).")
def bench_executor(images: int, size: str, workers: int) -> None:
    """Threads vs processes for image work: which executor the worker should use."""
    from pipeline.bench.executor import measure
    from pipeline.bench.ops import make_jpegs
    from pipeline.bench.report import finish, print_table

    workers = workers or os.cpu_count() or 1
    rates = measure(make_jpegs(images, *parse_size(size)), workers)
    print_table(f"executor: engine over {images} images, {workers} workers", [
        ("serial", f"{rates['serial']:6.2f} images/s"),
        ("threads", f"{rates['threads']:6.2f} images/s  "
                    f"({rates['threads'] / rates['serial']:.2f}x serial)"),
        ("processes", f"{rates['processes']:6.2f} images/s  "
                      f"({rates['processes'] / rates['serial']:.2f}x serial)"),
        ("threads / processes", f"{rates['threads'] / rates['processes']:6.3f}"),
    ])
    finish("executor", rates, None)


COMMANDS = [bench]
