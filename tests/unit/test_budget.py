"""Job cost estimates and the worker's memory gate."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import numpy as np
import pytest

from pipeline.jobs.budget import JobCost, MemoryGate, OverBudget, estimate_cost
from pipeline.jobs.processing import DONE, FAILED, run_batch
from pipeline.models import JobRequest
from pipeline.ops import Limits, compile_variants, parse_variant_specs
from tests.images import encode, quadrants
from tests.runtimes import SOURCES, local_runtime

LIMITS = Limits(max_output_pixels=10**8)


def chains(*specs: str):
    return compile_variants(parse_variant_specs(list(specs)), LIMITS, 16)


def test_estimates_grow_with_pixels_depth_and_variants():
    small = encode(quadrants(200, 100), "PNG")
    large = encode(quadrants(2000, 1000), "PNG")
    deep = encode(np.full((1000, 2000), 40000, np.uint16), "PNG")
    thumb = chains("t=w:100,webp")
    assert estimate_cost(small, thumb, 10**8).memory < estimate_cost(large, thumb, 10**8).memory
    assert estimate_cost(large, thumb, 10**8).memory < estimate_cost(deep, thumb, 10**8).memory
    upscale = compile_variants({"big": [
        {"op": "resize", "width": 8000, "height": 4000, "mode": "exact", "upscale": True},
        {"op": "encode", "format": "png"}]}, LIMITS, 16)
    assert estimate_cost(large, upscale, 10**8).memory > 8000 * 4000 * 4  # the upscale
    with pytest.raises(Exception) as info:
        estimate_cost(b"", thumb, 10**8)
    assert info.value.code == "empty_source"


def test_the_gate_lets_jobs_in_while_they_fit_and_refuses_the_impossible():
    async def scenario() -> list[str]:
        gate = MemoryGate(100)
        order: list[str] = []

        async def job(name: str, size: int, pause: float) -> None:
            async with gate.hold(JobCost(size)):
                order.append(f"+{name}")
                assert gate.in_use <= gate.budget
                await asyncio.sleep(pause)
            order.append(f"-{name}")

        await asyncio.gather(job("a", 60, 0.05), job("b", 60, 0.01), job("c", 30, 0.01))
        with pytest.raises(OverBudget):
            async with gate.hold(JobCost(101)):
                pass
        return order

    order = asyncio.run(scenario())
    assert order.index("+b") > order.index("-a")  # b waited for a: 60 + 60 > 100


class CountingGate(MemoryGate):
    """The worker's gate, counting how many jobs held memory at once."""

    def __init__(self, budget: int) -> None:
        super().__init__(budget)
        self.holding = self.most_at_once = 0

    @asynccontextmanager
    async def hold(self, cost: JobCost):
        async with super().hold(cost):
            self.holding += 1
            self.most_at_once = max(self.most_at_once, self.holding)
            try:
                yield
            finally:
                self.holding -= 1


def test_big_sixteen_bit_jobs_wait_for_each_other_under_a_small_budget(tmp_path):
    # four 16-bit 16 MP sources at once on two image threads; the budget fits one
    with local_runtime(tmp_path, image_threads="2", isolate_above_mb="100000",
                       max_job_memory_mb="100000") as runtime:
        big = encode(np.full((4000, 4000), 30000, np.uint16), "PNG")
        source = runtime.object_store.put(f"{SOURCES}/s/big.png", big, "image/png")
        variants = compile_variants(parse_variant_specs(["t=w:256,webp"]), runtime.limits, 4)
        cost = estimate_cost(big, variants, runtime.settings.max_source_pixels)
        gate = runtime.__dict__["memory_gate"] = CountingGate(cost.memory * 3 // 2)
        work = [(JobRequest(f"b{i}", source, {"t": []}, "normal"), variants)
                for i in range(4)]
        outcomes = asyncio.run(run_batch(work, runtime))
        assert [o.kind for o in outcomes] == [DONE] * 4
        assert gate.most_at_once == 1 and gate.in_use == 0
        roomy = runtime.__dict__["memory_gate"] = CountingGate(cost.memory * 4)
        asyncio.run(run_batch(work, runtime))
        assert roomy.most_at_once >= 2  # with room, jobs overlap


def test_a_job_over_the_per_job_budget_fails_with_its_code(tmp_path):
    with local_runtime(tmp_path, max_job_memory_mb="16") as runtime:
        source = runtime.object_store.put(f"{SOURCES}/s/a.png", encode(quadrants(400, 300), "PNG"),
                                          "image/png")
        huge = compile_variants({"big": [
            {"op": "resize", "width": 4000, "height": 3000, "mode": "exact",
             "upscale": True},
            {"op": "encode", "format": "png"}]}, runtime.limits, 4)
        [outcome] = asyncio.run(run_batch(
            [(JobRequest("h", source, {"t": []}, "normal"), huge)], runtime))
        assert outcome.kind == FAILED and outcome.error.code == "memory_budget"


PEAK_SCRIPT = """
import asyncio, json, resource, sys
import numpy as np
from pipeline.jobs.budget import MemoryGate, estimate_cost
from pipeline.models import JobRequest
from pipeline.ops import compile_variants, parse_variant_specs
from pipeline.jobs.processing import run_batch
from tests.images import encode
from tests.runtimes import SOURCES, local_runtime

root, gated = sys.argv[1], sys.argv[2] == "gated"
with local_runtime(root, image_threads="4", isolate_above_mb="100000",
                   max_job_memory_mb="100000") as runtime:
    settings = runtime.settings
    big = encode(np.full((7000, 7000), 30000, np.uint16), "PNG")  # 49 MP, 16-bit
    source = runtime.object_store.put(f"{SOURCES}/s/big.png", big, "image/png")
    variants = compile_variants(parse_variant_specs(["t=w:256,webp"]), runtime.limits, 4)
    cost = estimate_cost(big, variants, settings.max_source_pixels)
    runtime.__dict__["memory_gate"] = MemoryGate(cost.memory * 11 // 10 if gated else 1 << 40)
    del big
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    work = [(JobRequest(f"b{i}", source, {"t": []}, "normal"), variants) for i in range(4)]
    outcomes = asyncio.run(run_batch(work, runtime))
    kinds = [o.kind if o.kind == "done" else o.error.code for o in outcomes]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
print(json.dumps({"kinds": kinds, "base": base, "peak": peak, "estimate": cost.memory}))
"""


def test_four_49_mp_sixteen_bit_jobs_stay_under_the_budget(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    def run(mode: str) -> dict:
        result = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path / mode), mode],
                                capture_output=True, text=True, timeout=600,
                                cwd=Path(__file__).resolve().parents[2])
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    gated = run("gated")
    assert gated["kinds"] == ["done"] * 4
    # one job at a time: the image work's peak stays within one estimate
    assert gated["peak"] - gated["base"] < gated["estimate"], gated
    free = run("free")  # the same four jobs on four threads without the gate
    assert free["peak"] - free["base"] > gated["peak"] - gated["base"], (free, gated)


def test_a_high_priority_job_does_not_wait_behind_expensive_low_jobs(tmp_path):
    # two image threads; two expensive (isolated) low jobs arrive first, then a small
    # high one: it must finish before either low job does
    from pipeline.jobs.processing import run_job

    with local_runtime(tmp_path, image_threads="2", isolate_above_mb="64") as runtime:
        store = runtime.object_store
        big = store.put(f"{SOURCES}/s/big.png", encode(quadrants(3000, 2000), "PNG"), "image/png")
        small = store.put(f"{SOURCES}/s/small.png", encode(quadrants(64, 48), "PNG"), "image/png")
        slow = compile_variants({"v": [{"op": "sharpen", "sigma": 6.0, "amount": 0.2}] * 12
                                 + [{"op": "encode", "format": "png"}]}, runtime.limits, 4)
        quick = compile_variants(parse_variant_specs(["t=w:32,png"]), runtime.limits, 4)
        finished: list[str] = []

        async def job(name: str, source: str, variants, priority: str) -> None:
            await run_job(JobRequest(name, source, {"v": []}, priority), variants, runtime)
            finished.append(name)

        async def scenario() -> None:
            lows = [asyncio.create_task(job(f"low{i}", big, slow, "low")) for i in range(2)]
            while not runtime.isolated_slots.locked():  # the first low job holds its slot
                await asyncio.sleep(0.01)
            await job("high", small, quick, "high")
            await asyncio.gather(*lows)

        asyncio.run(scenario())
        assert finished[0] == "high", finished
