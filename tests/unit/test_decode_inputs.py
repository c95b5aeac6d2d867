"""Every accepted input kind decodes to upright uint8 pixels; hostile input is rejected."""

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import ImageRejected
from pipeline.imaging.decode import decode
from pipeline.ops import Limits, compile_chain
from tests.hostile import corpus
from tests.images import open_bytes, quadrants

RED = (255, 0, 0)


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def rgb(width=64, height=48):
    return Image.fromarray(quadrants(width, height))


def close(pixel, colour, tol=12):
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, colour, strict=False))


@pytest.mark.parametrize(("name", "data", "shape"), [
    ("jpeg", save(rgb(), "JPEG", quality=95), (48, 64, 3)),
    ("png", save(rgb(), "PNG"), (48, 64, 3)),
    ("webp", save(rgb(), "WEBP", lossless=True), (48, 64, 3)),
    ("tiff", save(rgb(), "TIFF"), (48, 64, 3)),
    ("bmp", save(rgb(), "BMP"), (48, 64, 3)),
    ("gif", save(rgb().convert("P", palette=Image.Palette.ADAPTIVE), "GIF"), (48, 64, 3)),
    ("palette-png", save(rgb().quantize(8), "PNG"), (48, 64, 3)),
    ("avif", save(rgb(), "AVIF", quality=95), (48, 64, 3)),
])
def test_formats_decode_with_the_right_colours(name, data, shape):
    frame = decode(data, max_pixels=10**6)
    assert frame.pixels.shape == shape and frame.pixels.dtype == np.uint8
    assert close(frame.pixels[5, 5], RED, tol=30 if name == "avif" else 12)


def test_sixteen_bit_png_is_scaled_not_clipped():
    ramp = (np.arange(64, dtype=np.uint16) * 1024).reshape(1, 64).repeat(8, 0)
    frame = decode(save(Image.fromarray(ramp), "PNG"), max_pixels=10**6)
    assert frame.pixels.dtype == np.uint8
    assert frame.pixels[0, 0] == 0 and frame.pixels[0, 63] == round(63 * 1024 * 255 / 65535)
    assert np.all(np.diff(frame.pixels[0].astype(int)) >= 0)


def test_alpha_png_keeps_alpha_and_flattens_for_jpeg():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[:, 5:, 3] = 255  # right half opaque blue, left half transparent
    frame = decode(save(Image.fromarray(rgba), "PNG"), max_pixels=10**6)
    assert frame.has_alpha
    out = compile_chain([{"op": "encode", "format": "jpeg", "background": "#ff0000"}],
                        Limits()).run(frame, Limits())
    pixels = np.asarray(open_bytes(out.data))
    assert close(pixels[5, 1], RED, 40) and close(pixels[5, 8], (0, 0, 255), 40)


def test_palette_with_transparency_becomes_rgba():
    image = rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    data = save(image, "PNG", transparency=0)
    assert decode(data, max_pixels=10**6).has_alpha


def test_cmyk_and_grayscale_jpeg():
    cmyk = decode(save(rgb().convert("CMYK"), "JPEG", quality=95), max_pixels=10**6)
    assert cmyk.pixels.shape == (48, 64, 3) and close(cmyk.pixels[5, 5], RED, 30)
    gray = decode(save(rgb().convert("L"), "JPEG"), max_pixels=10**6)
    assert gray.pixels.ndim == 2


def test_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert close(decode(data, max_pixels=10**6).pixels[4, 4], RED)


@pytest.mark.parametrize(("name", "case"), sorted(corpus().items()))
def test_hostile_corpus_is_rejected_with_the_right_reason(name, case):
    data, code = case
    with pytest.raises(ImageRejected) as info:
        decode(data, max_pixels=50_000_000)
    assert info.value.code == code, f"{name}: {info.value.message}"


def _pillow_calls(fn) -> dict[str, int]:
    """How often ``fn`` called into Pillow's decoders and encoders (each call releases
    and retakes the GIL)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.runcall(fn)
    calls = {"decode": 0, "encode": 0}
    for (_, _, name), (_, count, *_rest) in pstats.Stats(profile).stats.items():
        for kind in calls:
            if name == f"<method '{kind}' of 'ImagingDecoder' objects>" \
                    or name == f"<method '{kind}' of 'ImagingEncoder' objects>":
                calls[kind] += count
    return calls


def test_a_2mp_jpeg_decodes_in_a_few_gil_round_trips_not_dozens():
    # docs/performance.md fix 16: with Pillow's 64 KiB pieces this took 9 decoder and 33
    # encoder calls (tobytes), each a chance to wait behind the worker's event loop.
    rng = np.random.default_rng(5)
    pixels = np.clip(quadrants(2040, 1356).astype(np.int16)
                     + rng.integers(-40, 40, (1356, 2040, 3)), 0, 255).astype(np.uint8)
    data = save(Image.fromarray(pixels), "JPEG", quality=90)
    assert len(data) > 4 * 65536  # big enough that 64 KiB pieces would show
    frame = None

    def run():
        nonlocal frame
        frame = decode(data, max_pixels=10_000_000)

    calls = _pillow_calls(run)
    assert frame.pixels.shape == (1356, 2040, 3)
    assert calls["decode"] <= 2, calls
    assert calls["encode"] == 1, calls  # 8.3 MB of pixels in one piece: no join copy


def test_pillow_pieces_come_from_the_arenas_the_image_threads_reuse():
    # fix 21: pieces at or above the mmap threshold are mapped and faulted in per job;
    # the worker keeps its arenas for the next job (pipeline/worker/memory.py)
    from PIL import ImageFile

    from pipeline.worker.memory import MMAP_THRESHOLD

    assert 4 << 20 < ImageFile.MAXBLOCK < MMAP_THRESHOLD
