"""Facts about a source image, read from its header and metadata while it is decoded.

What is kept is bounded (every text field is cut to MAX_TEXT characters, at most a few
hundred bytes in all) because it travels in the job state and the results record. The
GPS block is reported only as present or not: its coordinates are never kept.
"""

from __future__ import annotations

import contextlib
import io
import struct
from datetime import datetime
from typing import Any

from PIL import Image, ImageCms

MAX_TEXT = 64
MAX_COUNTED_FRAMES = 1000
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL, _ORIENTATION, _DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
_DATETIME_ORIGINAL, _LENS_MAKE, _LENS_MODEL = 0x9003, 0xA433, 0xA434
_BITS_BY_MODE = {"1": 1, "I": 32, "F": 32}
#: What a broken metadata block may raise while it is read; it only loses that fact.
_METADATA_ERRORS = (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError,
                    struct.error, ImageCms.PyCMSError)


def source_facts(image: Image.Image, width: int, height: int, bit_depth: int,
                 profile: bytes | None) -> dict[str, Any]:
    """Facts of an opened (and loaded) source: ``width`` x ``height`` as stored, before
    any shrink on load; ``bit_depth`` per channel as stored (see bit_depth_of). Call
    after the pixels were copied out (counting a GIF's frames moves its frame)."""
    facts: dict[str, Any] = {
        "width": width, "height": height, "format": (image.format or "unknown").lower(),
        "bit_depth": bit_depth, "alpha": _has_alpha(image),
        "icc": _icc_description(profile) if profile else None,
        **_exif_facts(image),
    }
    facts["frames"] = _frame_count(image)  # last: it moves a GIF's frame
    facts["animated"] = facts["frames"] > 1
    return {k: v for k, v in facts.items() if v is not None}


def _frame_count(image: Image.Image) -> int:
    """Frames in the file, counted up to MAX_COUNTED_FRAMES: a GIF's count walks every
    frame (Pillow's n_frames would walk all of a hostile file). Moves a GIF's current
    frame: call after its pixels were copied."""
    if image.format != "GIF":
        return max(1, int(getattr(image, "n_frames", 1) or 1))
    count = 1
    with contextlib.suppress(EOFError, *_METADATA_ERRORS):  # the end, or a broken frame
        while count < MAX_COUNTED_FRAMES:
            image.seek(count)
            count += 1
    return count


def bit_depth_of(image: Image.Image) -> int:
    """Bits per channel as the file stores them; call before load() (16-bit PNGs open
    as 8-bit modes and only their raw mode tells)."""
    # A tile's args are its raw mode ("RGB;16B") or a tuple that starts with it.
    raw_modes = [args[0] if isinstance(args, tuple) and args else args
                 for args in (tile.args for tile in getattr(image, "tile", None) or [])]
    if image.mode.startswith("I;16") or any(isinstance(raw, str) and ";16" in raw
                                            for raw in raw_modes):
        return 16
    return _BITS_BY_MODE.get(image.mode, 8)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info)


def _icc_description(profile: bytes) -> str | None:
    try:
        parsed = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return _text(ImageCms.getProfileDescription(parsed))
    except _METADATA_ERRORS:
        return None


def _exif_facts(image: Image.Image) -> dict[str, Any]:
    try:
        exif = image.getexif()
        if not exif:
            return {}
        detail = exif.get_ifd(_EXIF_IFD)
        gps = exif.get_ifd(_GPS_IFD)
    except _METADATA_ERRORS:
        return {}
    orientation = exif.get(_ORIENTATION)
    return {
        "camera_make": _text(exif.get(_MAKE)), "camera_model": _text(exif.get(_MODEL)),
        "lens": _text(detail.get(_LENS_MODEL)) or _text(detail.get(_LENS_MAKE)),
        "taken_at": _taken_at(detail.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)),
        "orientation": orientation if isinstance(orientation, int)
        and 1 <= orientation <= 8 else None,
        "gps": bool(gps),
    }


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()
    return cleaned[:MAX_TEXT] or None


def _taken_at(value: Any) -> str | None:
    """EXIF's 'YYYY:MM:DD HH:MM:SS' (local time, no zone) as ISO 8601 without a zone."""
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None
