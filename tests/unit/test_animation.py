"""Animated GIF/WebP sources: kept whole by variants that ask (frames, timing, loop),
the first frame for the others, and bounded before any frame is decoded."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import ImageRejected
from pipeline.jobs.budget import estimate_cost
from pipeline.jobs.engine import Engine, EngineLimits
from pipeline.jobs.sources import SourcePolicy
from pipeline.objects import MemoryObjectStore
from pipeline.ops import Limits, compile_variants, parse_variant_specs

COLOURS = [(230, 20, 20), (20, 200, 20), (20, 20, 230), (240, 240, 20), (200, 20, 200)]


def animated_gif(count: int = 5, size: tuple[int, int] = (40, 30),
                 durations: list[int] | None = None, loop: int = 0) -> bytes:
    """``count`` flat frames cycling through COLOURS (each unlike the one before)."""
    frames = [Image.new("RGB", size, COLOURS[i % len(COLOURS)]) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations or [40 * (i + 1) for i in range(count)], loop=loop)
    return buffer.getvalue()


def render(data: bytes, specs: list[str], limits: Limits | None = None) -> dict:
    limits = limits or Limits()
    store = MemoryObjectStore("t")
    engine = Engine(store, SourcePolicy(store), EngineLimits(10**8, 10**8, limits))
    chains = compile_variants(parse_variant_specs(specs), limits, 8)
    encoded, _ = engine.render(data, chains)
    return encoded


def frames_of(data: bytes) -> tuple[list[tuple[int, ...]], list[int], int, tuple[int, int]]:
    image = Image.open(io.BytesIO(data))
    colours, durations = [], []
    for index in range(image.n_frames):
        image.seek(index)
        colours.append(image.convert("RGB").getpixel((image.width // 2, image.height // 2)))
        durations.append(image.info["duration"])
    return colours, durations, image.info.get("loop", 0), image.size


@pytest.mark.parametrize("fmt", ["webp", "gif"])
def test_an_animated_gif_keeps_its_frames_timing_and_loop(fmt):
    durations = [40, 80, 120, 160, 200]
    out = render(animated_gif(durations=durations, loop=3),
                 [f"anim=fit:20x20,{fmt}:animated:q90"])["anim"]
    colours, kept_durations, loop, size = frames_of(out.data)
    assert len(colours) == 5 and kept_durations == durations and loop == 3
    assert size == (20, 15) and (out.width, out.height) == size  # every frame resized
    for got, expected in zip(colours, COLOURS, strict=True):
        assert got == pytest.approx(expected, abs=12)


def test_other_variants_of_the_job_take_the_first_frame():
    out = render(animated_gif(), ["anim=webp:animated", "still=png"])
    assert Image.open(io.BytesIO(out["still"].data)).n_frames == 1
    assert Image.open(io.BytesIO(out["anim"].data)).n_frames == 5
    still = Image.open(io.BytesIO(out["still"].data)).convert("RGB").getpixel((5, 5))
    assert still == pytest.approx(COLOURS[0], abs=8)


def test_an_animated_webp_source_round_trips():
    webp = render(animated_gif(count=3), ["w=webp:animated:lossless"])["w"].data
    again = render(webp, ["w=webp:animated:lossless"])["w"].data
    colours, durations, _, _ = frames_of(again)
    assert durations == [40, 80, 120]
    assert [c[:3] for c in colours] == [c[:3] for c in COLOURS[:3]]


def test_a_still_source_asked_for_animation_gives_a_still_output():
    still = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(still, format="PNG")
    out = render(still.getvalue(), ["a=webp:animated"])["a"]
    assert Image.open(io.BytesIO(out.data)).n_frames == 1


def test_ten_thousand_frames_are_refused_before_any_is_decoded():
    data = animated_gif(count=10_000, size=(2, 2), durations=[20] * 10_000)
    with pytest.raises(ImageRejected) as caught:
        render(data, ["a=webp:animated"])
    assert caught.value.code == "too_many_frames" and "10000" in caught.value.message
    # Without animation the same file is just its first frame.
    assert render(data, ["first=png"])["first"].width == 2


def test_all_frames_together_are_bounded_in_pixels():
    data = animated_gif(count=10, size=(100, 100))
    limits = Limits(max_animation_pixels=10 * 100 * 100 - 1)
    with pytest.raises(ImageRejected) as caught:
        render(data, ["a=gif:animated"], limits)
    assert caught.value.code == "animation_too_large"
    assert len(render(data, ["a=gif:animated"], Limits())["a"].data) > 0


def test_the_memory_estimate_counts_every_kept_frame():
    data = animated_gif(count=50, size=(200, 200))
    limits = Limits()
    still = compile_variants(parse_variant_specs(["s=webp"]), limits, 4)
    whole = compile_variants(parse_variant_specs(["a=webp:animated"]), limits, 4)
    kept = estimate_cost(data, whole, 10**8).memory
    assert kept >= estimate_cost(data, still, 10**8).memory + 50 * 200 * 200 * 4 * 2


def test_animated_applies_to_webp_and_gif_only():
    from pipeline.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        compile_variants(parse_variant_specs(["a=jpeg:animated"]), Limits(), 4)
    assert "animated" in caught.value.message


def test_frames_come_out_in_srgb_from_a_tagged_animated_webp():
    from pipeline.imaging.iccbuild import DISPLAY_P3, rgb_profile

    frames = [Image.new("RGB", (16, 16), (200, 40, 40)), Image.new("RGB", (16, 16),
                                                                   (40, 200, 40))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:],
                   duration=[50, 50], lossless=True, icc_profile=rgb_profile(DISPLAY_P3))
    out = render(buffer.getvalue(), ["a=webp:animated:lossless"])["a"]
    colours, _, _, _ = frames_of(out.data)
    assert colours[0][:3] == pytest.approx((218, 0, 26), abs=3)  # P3 red, in sRGB
    assert np.array_equal(np.asarray(colours[1][:3]) > 150, [False, True, False])
