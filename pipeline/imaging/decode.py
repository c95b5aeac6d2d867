"""Safe decoding of untrusted image bytes.

The pixel limit is checked from the header before any pixel is decoded, so a
decompression bomb costs a header parse, not gigabytes. JPEG sources may be shrunk
in the DCT domain on load (Pillow ``draft``) when every variant wants far fewer pixels.
EXIF orientation is read here and applied by the ``orient`` op of each chain.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from pipeline.errors import ImageRejected
from pipeline.imaging import formats, icc
from pipeline.imaging.facts import bit_depth_of, source_facts
from pipeline.ops.base import Frame

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF",
                              "HEIF"})
#: The Pillow plugins allowed to open a source (MPO is opened by the JPEG plugin); no
#: other plugin's code ever sees our bytes.
_OPENERS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF", "HEIF")
ORIENTATION_TAG = 0x0112

formats.register()
# Our own header check below is the real guard; Pillow's is a second line of defence.
Image.MAX_IMAGE_PIXELS = 200_000_000
# Pillow moves pixels in MAXBLOCK pieces (reads for decoders, Image.tobytes, encoders) and
# releases and retakes the GIL around each piece. With its 64 KiB, one 2 MP job retook the
# GIL ~45 times, each a chance to queue behind the worker's event loop thread while a core
# idled (docs/performance.md, fix 16). 16 MiB: the pixels of up to 5.5 MP RGB come out of
# tobytes in one piece (no join copy), and pieces stay under the worker's mmap threshold
# (pipeline/worker/memory.py), so they come from the arenas the image threads reuse. 4 MiB
# pieces fragmented those arenas: +100 MiB peak RSS on the 12 MP bench (fix 21).
ImageFile.MAXBLOCK = 16 << 20
#: Most scans a JPEG may have (progressive encoders write about 10; each scan is a full
#: pass of the decoder, so 5,000 repeated scans cost a minute).
MAX_JPEG_SCANS = 100
#: Most PNG chunks besides IDAT (each is a parse step before and after the pixels).
MAX_PNG_CHUNKS = 1000

#: (width, height, EXIF orientation) -> how far the source may shrink on load.
ScalePlanner = Callable[[int, int, int], float]


def decode(data: bytes, *, max_pixels: int, load_scale: float | ScalePlanner = 1.0,
           structure_checked: bool = False) -> Frame:
    """Decode ``data`` into a Frame, or raise ImageRejected with a precise reason.

    ``load_scale`` (a number, or a function of the header's size and orientation) < 0.5
    lets JPEG decoding shrink by up to that factor for free. ``structure_checked``: the
    caller already ran ``check_structure`` on these bytes (the worker does, in the cost
    estimate before any decoding).
    """
    if not data:
        raise ImageRejected("source is empty (0 bytes)", "empty_source")
    if not structure_checked:
        check_structure(data)
    image = open_checked(io.BytesIO(data), max_pixels)
    with image:
        fmt = image.format or "unknown"
        width, height = image.size
        # JPEG keeps EXIF in its header, so the orientation is known before decoding (the
        # shrink-on-load plan needs it). Other formats may keep it after the pixels, and
        # Pillow's getexif() would then decode them: read it after load() instead.
        is_jpeg = fmt in ("JPEG", "MPO")
        orientation = _orientation(image) if is_jpeg else 1
        scale = load_scale(width, height, orientation) if callable(load_scale) else load_scale
        bit_depth = bit_depth_of(image)
        with decoder_failures(fmt):
            if is_jpeg and scale < 0.5:
                target = (max(1, int(width * scale)), max(1, int(height * scale)))
                image.draft(image.mode if image.mode in ("RGB", "L") else "RGB", target)
            image.load()
            if not is_jpeg and fmt not in formats.SELF_ORIENTING:
                orientation = _orientation(image)
            profile = image.info.get("icc_profile") or formats.nclx_profile(image.info)
            pixels, converted_profile = _to_uint8_array(image, profile)
            facts = source_facts(image, width, height, bit_depth, profile)
            profile = converted_profile
        raw_exif = image.info.get("exif")
    return Frame(pixels, fmt.lower(), raw_exif, profile, orientation, facts)


def check_structure(data: bytes) -> None:
    """Refuse files whose structure makes decoding cost explode, before any decoder runs:
    JPEGs with more than MAX_JPEG_SCANS scans, PNGs with more than MAX_PNG_CHUNKS
    ancillary chunks. (SOS markers cannot occur inside JPEG entropy-coded data, where
    0xFF is always stuffed, so counting them is exact.)"""
    if data[:2] == b"\xff\xd8":
        scans = jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise ImageRejected(f"JPEG has {scans} scans, more than {MAX_JPEG_SCANS}",
                                "too_many_scans")
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        offset, chunks = 8, 0
        while offset + 8 <= len(data):
            length = int.from_bytes(data[offset:offset + 4], "big")
            kind = data[offset + 4:offset + 8]
            if kind == b"IEND":
                return
            if kind != b"IDAT":
                chunks += 1
                if chunks > MAX_PNG_CHUNKS:
                    raise ImageRejected(f"PNG has more than {MAX_PNG_CHUNKS} chunks besides "
                                        "its pixels", "too_many_chunks")
            offset += 12 + length


def jpeg_scans(data: bytes) -> int:
    """The SOS markers (FF DA) in ``data``. numpy lets go of the GIL while it looks
    (``bytes.count`` held it ~0.6 ms per 550 kB JPEG, every job: docs/performance.md, fix
    17), and reading the bytes as 16-bit words at even and at odd offsets compares each
    pair once, half the work of finding every FF first."""
    if len(data) < 2:
        return 0
    at_even = np.frombuffer(data, _PAIR, count=len(data) // 2)
    at_odd = np.frombuffer(data, _PAIR, count=(len(data) - 1) // 2, offset=1)
    return int(np.count_nonzero(at_even == _SOS)) + int(np.count_nonzero(at_odd == _SOS))


#: Two bytes read as one little-endian word: FF DA is 0xDAFF on any machine.
_PAIR = np.dtype("<u2")
_SOS = 0xDAFF


def open_checked(stream: BinaryIO, max_pixels: int) -> Image.Image:
    """Open an image lazily and check its header: a recognised, accepted format of at
    most ``max_pixels`` pixels. Nothing is decoded; ImageRejected says what is wrong."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=_OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("image header declares more pixels than allowed",
                            "decompression_bomb") from None
    except UnidentifiedImageError:
        raise _unidentified(stream) from None
    except MemoryError:
        raise ImageRejected("image header asks for too much memory", "too_large") from None
    except Exception as exc:  # any failure of a header parser is the data's fault
        raise ImageRejected(f"image header is corrupt: {_short(exc)}",
                            "corrupt_image") from None
    fmt = image.format or "unknown"
    width, height = image.size
    problem = None
    if fmt not in ACCEPTED_FORMATS:
        problem = ImageRejected(f"format {fmt} is not supported", "unsupported_format")
    elif width <= 0 or height <= 0:
        problem = ImageRejected(f"image has no pixels ({width}x{height})", "corrupt_image")
    elif width * height > max_pixels:
        problem = ImageRejected(f"image is {width}x{height} = {width * height} pixels, more "
                                f"than the {max_pixels} limit", "decompression_bomb")
    if problem:
        image.close()
        raise problem
    return image


def _unidentified(stream: BinaryIO) -> ImageRejected:
    """Why no accepted plugin opened ``stream``: another format (named), a header of an
    accepted format that its plugin refused (with the plugin's reason), or not an image."""
    stream.seek(0)
    fmt = _recognise(stream.read(64))
    if fmt is None:
        return ImageRejected("source is not a recognised image", "not_an_image")
    if fmt not in _OPENERS:
        return ImageRejected(f"format {fmt} is not supported; accepted: "
                             f"{', '.join(sorted(ACCEPTED_FORMATS))}", "unsupported_format")
    stream.seek(0)
    try:  # the plugin's own reason, which Image.open folds into "cannot identify"
        Image.OPEN[fmt][0](stream, "").close()
        reason = "its header is not understood"
    except Exception as exc:  # any failure of a header parser is the data's fault
        cause = exc.__cause__ or exc.__context__
        if fmt == "TIFF" and isinstance(cause, KeyError):
            return ImageRejected(f"TIFF compression {cause} is not supported",
                                 "unsupported_codec")
        reason = _short(exc)
    return ImageRejected(f"{fmt} header is corrupt: {reason}", "corrupt_image")


def _recognise(prefix: bytes) -> str | None:
    """The format Pillow would take ``prefix`` for, by the plugins' own signature checks
    (pure byte comparisons: no plugin parses anything). Accepted formats are tried first."""
    plugins = sorted(Image.OPEN.items(), key=lambda item: item[0] not in _OPENERS)
    for fmt, (_factory, accept) in plugins:
        try:
            if accept is not None and accept(prefix):
                return fmt
        except Exception:  # a signature check that fails did not match
            continue
    return None


@contextmanager
def decoder_failures(fmt: str) -> Iterator[None]:
    """Whatever a decoder raises on ``fmt`` data inside the block becomes a permanent
    ImageRejected with a precise code (the data is at fault, never the worker)."""
    try:
        yield
    except MemoryError:
        raise ImageRejected("image is too large to decode", "too_large") from None
    except ImageRejected:
        raise
    except Exception as exc:  # any failure of a decoder is the data's fault
        raise _read_failure(fmt, exc) from None


def _read_failure(fmt: str, exc: Exception) -> ImageRejected:
    """The permanent rejection for an exception a decoder raised on ``fmt`` data."""
    text = _short(exc)
    if isinstance(exc, OSError) and (("decoder" in text and "not available" in text)
                                     or "unsupported" in text.lower()):
        return ImageRejected(f"{fmt} uses a compression this worker cannot decode: {text}",
                             "unsupported_codec")
    if isinstance(exc, ValueError) and "conversion" in text:
        return ImageRejected(f"{fmt} pixel layout is not supported: {text}",
                             "unsupported_mode")
    return ImageRejected(f"image data is truncated or corrupt: {text}", "corrupt_image")


def _short(exc: Exception) -> str:
    """An exception as one bounded line (messages may quote the hostile input)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _orientation(image: Image.Image) -> int:
    """EXIF orientation 1..8 (1 when absent or unreadable: a broken EXIF block must not
    sink an otherwise fine image)."""
    try:
        value = int(image.getexif().get(ORIENTATION_TAG, 1))
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        return 1
    return value if 1 <= value <= 8 else 1


def _to_uint8_array(image: Image.Image, profile: bytes | None
                    ) -> tuple[np.ndarray, bytes | None]:
    """Every mode (16-bit, palette, CMYK, LA, 1, I, F) as L, RGB or RGBA pixels, and the
    ICC profile they are in. CMYK goes through its own profile to sRGB here (frames hold
    no CMYK); without one, through the plain formula viewers use for untagged CMYK."""
    if image.mode == "CMYK":
        converted = icc.cmyk_to_srgb(image, profile)
        return np.asarray(converted or image.convert("RGB")), None
    return _uint8_pixels(image), profile


def _uint8_pixels(image: Image.Image) -> np.ndarray:
    mode = image.mode
    # Integer and float32 arithmetic: float64 copies of a 49 MP 16-bit image took 1 GB.
    if mode.startswith("I;16"):
        arr = np.asarray(image).astype(np.uint32)
        arr *= 255
        arr += 32767
        arr //= 65535
        return arr.astype(np.uint8)
    if mode == "I":
        arr = np.asarray(image)
        if arr.max(initial=0) > 255:
            return np.clip((arr.astype(np.float32) * (255.0 / 65535.0)) + 0.5, 0,
                           255).astype(np.uint8)
        return np.clip(arr, 0, 255).astype(np.uint8)
    if mode == "F":
        arr = np.asarray(image, dtype=np.float32)
        return np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")  # YCbCr, LAB, HSV, ...
    return np.asarray(image)
