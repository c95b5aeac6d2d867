"""``imgpipe bench ops``: the engine against a bare OpenCV loop, and the JPEG fast path.

Both sides run the same operations with the same encoder settings on the same generated
photos, one image at a time on one thread, in A/B/A order; the ratio is engine / bare.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np
from PIL import Image

from pipeline.bench.harness import BENCH_SOURCES
from pipeline.dev.samples import photo_like
from pipeline.imaging.decode import decode
from pipeline.jobs.engine import Engine, EngineLimits
from pipeline.jobs.sources import SourcePolicy
from pipeline.models import JobRequest
from pipeline.objects import MemoryObjectStore
from pipeline.ops import Limits, compile_variants
from pipeline.ops.encode import DEFAULT_WEBP_METHOD

VARIANTS = {
    "large": [{"op": "resize", "width": 1280}, {"op": "encode", "format": "jpeg", "quality": 85}],
    "web": [{"op": "resize", "width": 1280}, {"op": "encode", "format": "webp", "quality": 80}],
    "thumb": [{"op": "resize", "width": 256, "height": 256},
              {"op": "encode", "format": "webp", "quality": 80}],
    "soft": [{"op": "resize", "width": 1280}, {"op": "grayscale"}, {"op": "blur", "sigma": 2},
             {"op": "encode", "format": "jpeg", "quality": 85}],
    "edges": [{"op": "resize", "width": 1280}, {"op": "edges"},
              {"op": "encode", "format": "png"}],
}


def make_jpegs(count: int, width: int, height: int, seed: int = 11) -> list[bytes]:
    images = []
    for i in range(count):
        ok, data = cv2.imencode(".jpg", photo_like(width, height, seed + i),
                                [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        images.append(data.tobytes())
    return images


def tag_jpeg(data: bytes, profile: bytes) -> bytes:
    """``data`` (a JPEG) with ``profile`` embedded as one APP2 ICC_PROFILE segment after
    SOI: the same pixels, now in the profile's space (profile < 64 KB)."""
    body = b"ICC_PROFILE\0" + bytes([1, 1]) + profile
    return data[:2] + b"\xff\xe2" + (len(body) + 2).to_bytes(2, "big") + body + data[2:]


def _webp(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "WEBP", quality=80, method=DEFAULT_WEBP_METHOD)
    return buffer.getvalue()


def bare_opencv(data: bytes) -> int:
    """The same five variants written as a plain OpenCV (+ Pillow for WebP) loop."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    scale = min(1.0, 1280 / w)
    large = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    rgb_large = cv2.cvtColor(large, cv2.COLOR_BGR2RGB)
    s = min(1.0, 256 / w, 256 / h)
    thumb = cv2.cvtColor(cv2.resize(bgr, (round(w * s), round(h * s)),
                                    interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    gray = cv2.cvtColor(large, cv2.COLOR_BGR2GRAY)
    outputs = [
        cv2.imencode(".jpg", large, [cv2.IMWRITE_JPEG_QUALITY, 85])[1],
        _webp(rgb_large),
        _webp(thumb),
        cv2.imencode(".jpg", cv2.GaussianBlur(gray, (0, 0), 2), [cv2.IMWRITE_JPEG_QUALITY, 85])[1],
        cv2.imencode(".png", cv2.Canny(gray, 100, 200), [cv2.IMWRITE_PNG_COMPRESSION, 6])[1],
    ]
    return sum(len(o) for o in outputs)


@dataclass
class EngineBench:
    """The real Engine, reading sources from and writing outputs to a memory store."""

    engine: Engine
    store: MemoryObjectStore
    chains: dict

    @classmethod
    def create(cls, variants: dict) -> EngineBench:
        store = MemoryObjectStore("bench")
        limits = Limits()
        engine = Engine(store, SourcePolicy(store), EngineLimits(10**9, 10**9, limits))
        return cls(engine, store, compile_variants(variants, limits, 16))

    def load(self, images: list[bytes]) -> list[JobRequest]:
        requests = []
        for i, data in enumerate(images):
            uri = self.store.put(f"{BENCH_SOURCES}/{i}/src.jpg", data, "image/jpeg")
            requests.append(JobRequest(f"bench-{i}", uri, {}))
        return requests

    def run(self, request: JobRequest) -> int:
        return sum(o.bytes for o in self.engine.run(request, self.chains).outputs)


def images_per_second(fn: Callable[[object], int], items: list, rounds: int = 1) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for item in items:
            fn(item)
    return len(items) * rounds / (time.perf_counter() - started)


def fast_path_speedup(size: tuple[int, int], count: int) -> tuple[float, float]:
    """Thumbnails of large JPEGs: images/s with shrink-on-load vs full decode."""
    images = make_jpegs(count, *size, seed=101)
    chains = compile_variants({"thumb": VARIANTS["thumb"]}, Limits(), 4)
    chain = chains["thumb"]

    def thumb(data: bytes, fast: bool) -> int:
        planner = (lambda w, h, o: chain.load_scale(w, h, o)) if fast else 1.0
        frame = decode(data, max_pixels=10**9, load_scale=planner)
        return len(chain.run(frame, Limits()).data)

    full = images_per_second(lambda d: thumb(d, False), images)
    fast = images_per_second(lambda d: thumb(d, True), images)
    return full, fast


#: Each optional feature as (baseline variant, the same variant with the feature).
FEATURES = {
    "gravity attention (square thumbnail)": (
        [{"op": "thumbnail", "size": 256, "square": True}, {"op": "encode", "format": "jpeg"}],
        [{"op": "thumbnail", "size": 256, "square": True, "gravity": "attention"},
         {"op": "encode", "format": "jpeg"}]),
    "gravity entropy (square thumbnail)": (
        [{"op": "thumbnail", "size": 256, "square": True}, {"op": "encode", "format": "jpeg"}],
        [{"op": "thumbnail", "size": 256, "square": True, "gravity": "entropy"},
         {"op": "encode", "format": "jpeg"}]),
    "encode max_bytes 40 kB (1280 px JPEG)": (
        [{"op": "resize", "width": 1280}, {"op": "encode", "format": "jpeg", "quality": 85}],
        [{"op": "resize", "width": 1280},
         {"op": "encode", "format": "jpeg", "quality": 85, "max_bytes": 40_000}]),
}


def _ms_per_image(fn: Callable[[object], object], items: list, rounds: int) -> float:
    return 1000.0 / images_per_second(fn, items, rounds)


def feature_costs(images: list[bytes], rounds: int = 1) -> dict[str, float]:
    """Milliseconds each feature adds per image (one thread, A/B/A around the feature),
    with the always-on source summary (facts, BlurHash, dominant colour) first."""
    from pipeline.imaging.facts import bit_depth_of, source_facts
    from pipeline.imaging.placeholder import placeholders

    frames = [decode(data, max_pixels=10**9) for data in images]

    def facts(data: bytes) -> object:
        with Image.open(io.BytesIO(data)) as image:
            depth = bit_depth_of(image)
            return source_facts(image, *image.size, depth, None)

    costs = {
        "source facts (always on)": _ms_per_image(facts, images, rounds),
        "placeholder + colour (always on)": _ms_per_image(
            lambda f: placeholders(f.pixels, f.icc_profile), frames, rounds),
    }
    limits = Limits()
    for name, (plain, featured) in FEATURES.items():
        chains = compile_variants({"plain": plain, "featured": featured}, limits, 4)
        runs = {key: partial(chain.run, limits=limits) for key, chain in chains.items()}
        base_a = _ms_per_image(runs["plain"], frames, rounds)
        with_it = _ms_per_image(runs["featured"], frames, rounds)
        base_b = _ms_per_image(runs["plain"], frames, rounds)
        costs[name] = with_it - (base_a + base_b) / 2
    return costs
