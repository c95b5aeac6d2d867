"""Formats beyond Pillow's own: HEIF/HEIC in (pillow-heif, libheif) and JPEG XL out
(pillow-jxl-plugin), registered once, configured for untrusted input.

JPEG XL is not accepted as a source: pillow-jxl-plugin decodes the whole image (every
frame, on every core) inside Image.open, before any header can be checked against the
pixel limit, so one upload could choose its own cost. Encoding our own pixels is safe.

libheif applies the orientation HEIF defines (irot/imir), as the format requires, so
frames from it are upright and any EXIF orientation tag is ignored. HEIF colour given as
an nclx box
(primaries and transfer, no ICC profile: what many Android phones write) becomes an
equivalent ICC profile here, so colour management treats it like any tagged source.
"""

from __future__ import annotations

import threading

from PIL import Image

from pipeline.imaging.iccbuild import SRGB_CURVE, RgbSpace, rgb_profile

#: Formats whose decoder has already applied the orientation.
SELF_ORIENTING = frozenset({"HEIF"})
#: ITU-T H.273 transfer characteristics we can express as an ICC curve: sRGB's, and the
#: BT.709 family (1, 6, 14, 15) whose camera curve displays as sRGB's in practice.
_NCLX_CURVES = {13: SRGB_CURVE, 1: SRGB_CURVE, 6: SRGB_CURVE, 14: SRGB_CURVE,
                15: SRGB_CURVE}
_SRGB_PRIMARIES = 1  # H.273 colour primaries 1: BT.709, which sRGB shares

_registered = False
_lock = threading.Lock()


def register() -> None:
    """Register the HEIF and JPEG XL plugins (idempotent); HEIF decodes single-threaded
    (a job's CPU is bounded by the worker's image threads) and reads no thumbnails,
    depth or auxiliary images."""
    global _registered
    with _lock:
        if _registered:
            return
        Image.init()
        import pillow_heif
        import pillow_jxl.JpegXLImagePlugin as jxl_plugin

        pillow_heif.options.THUMBNAILS = False
        pillow_heif.options.DEPTH_IMAGES = False
        pillow_heif.options.AUX_IMAGES = False
        pillow_heif.options.DECODE_THREADS = 1
        pillow_heif.register_heif_opener()
        jxl_plugin.DECODE_THREADS = 0  # 0: no decoder threads of its own
        _registered = True


def nclx_profile(info: dict) -> bytes | None:
    """An ICC profile equivalent to HEIF nclx colour information, or None when it says
    sRGB (nothing to convert) or uses a transfer we cannot express (PQ/HLG HDR)."""
    nclx = info.get("nclx_profile")
    if not isinstance(nclx, dict) or nclx.get("color_primaries") in (None, _SRGB_PRIMARIES):
        return None
    curve = _NCLX_CURVES.get(nclx.get("transfer_characteristics"))
    try:
        space = RgbSpace(
            f"nclx primaries {int(nclx['color_primaries'])}",
            (float(nclx["color_primary_red_x"]), float(nclx["color_primary_red_y"])),
            (float(nclx["color_primary_green_x"]), float(nclx["color_primary_green_y"])),
            (float(nclx["color_primary_blue_x"]), float(nclx["color_primary_blue_y"])),
            (float(nclx["color_primary_white_x"]), float(nclx["color_primary_white_y"])),
            curve or SRGB_CURVE)
    except (KeyError, TypeError, ValueError):
        return None
    chromaticities = (space.red, space.green, space.blue, space.white)
    if curve is None or not all(0 <= x <= 1 and 0 < y <= 1 for x, y in chromaticities):
        return None
    try:
        return rgb_profile(space)
    except (ValueError, ZeroDivisionError, ArithmeticError):
        return None  # degenerate primaries: no valid matrix
