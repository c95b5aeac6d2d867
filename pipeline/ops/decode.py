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
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import ImageRejected
from pipeline.ops.base import Frame

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "TIFF", "BMP", "AVIF"})
ORIENTATION_TAG = 0x0112

# Our own header check below is the real guard; Pillow's is a second line of defence.
Image.MAX_IMAGE_PIXELS = 200_000_000

#: (width, height, EXIF orientation) -> how far the source may shrink on load.
ScalePlanner = Callable[[int, int, int], float]


def decode(data: bytes, *, max_pixels: int, load_scale: float | ScalePlanner = 1.0) -> Frame:
    """Decode ``data`` into a Frame, or raise ImageRejected with a precise reason.

    ``load_scale`` (a number, or a function of the header's size and orientation) < 0.5
    lets JPEG decoding shrink by up to that factor for free.
    """
    if not data:
        raise ImageRejected("source is empty (0 bytes)", "empty_source")
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
        if is_jpeg and scale < 0.5:
            target = (max(1, int(width * scale)), max(1, int(height * scale)))
            image.draft(image.mode if image.mode in ("RGB", "L") else "RGB", target)
        try:
            image.load()
            if not is_jpeg:
                orientation = _orientation(image)
            pixels = _to_uint8_array(image)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRejected(f"image data is truncated or corrupt: {exc}",
                                "corrupt_image") from None
        except MemoryError:
            raise ImageRejected("image is too large to decode", "too_large") from None
        raw_exif = image.info.get("exif")
        icc = image.info.get("icc_profile")
    return Frame(pixels, fmt.lower(), raw_exif, icc, orientation)


def open_checked(stream: BinaryIO, max_pixels: int) -> Image.Image:
    """Open an image lazily and check its header: a recognised, accepted format of at
    most ``max_pixels`` pixels. Nothing is decoded; ImageRejected says what is wrong."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("image header declares more pixels than allowed",
                            "decompression_bomb") from None
    except UnidentifiedImageError:
        raise ImageRejected("source is not a recognised image", "not_an_image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"image header is corrupt: {exc}", "corrupt_image") from None
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


def _orientation(image: Image.Image) -> int:
    """EXIF orientation 1..8 (1 when absent or unreadable: a broken EXIF block must not
    sink an otherwise fine image)."""
    try:
        value = int(image.getexif().get(ORIENTATION_TAG, 1))
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        return 1
    return value if 1 <= value <= 8 else 1


def _to_uint8_array(image: Image.Image) -> np.ndarray:
    """Normalise every mode (16-bit, palette, CMYK, LA, 1, I, F) to L, RGB or RGBA."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(image).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return np.clip(arr * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
    if mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        return np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")  # CMYK (Adobe-inverted handled by Pillow), YCbCr, ...
    return np.asarray(image)
