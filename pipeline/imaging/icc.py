"""Colour management: pixels in an embedded ICC profile's space -> sRGB (LittleCMS).

A colour-managed viewer shows a tagged image through its profile; these functions give
the same colours in sRGB, so untagged outputs look like the source everywhere. Built
transforms are cached by profile digest (a batch of photos from one camera pays once);
a profile that maps colours to themselves (any sRGB profile) is recognised once by
measurement and then costs nothing. A profile LittleCMS cannot read is ignored, as
browsers do: the pixels are then taken as sRGB.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms

from pipeline.errors import ImageRejected

#: Larger profiles are refused: their LUTs are parsed and precomputed per transform.
#: (Camera and monitor profiles are a few KB; press CMYK profiles up to about 2 MB.)
MAX_PROFILE_BYTES = 4 * 1024 * 1024
#: Distinct profiles whose transforms are kept (LRU; each is a few hundred KB at most).
CACHE_SIZE = 32
#: A profile whose transform moves no channel of this grid by more than this is sRGB.
_IDENTITY_TOLERANCE = 1

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
#: sRGB profile bytes (what an sRGB-tagged source carries, e.g. in tests).
SRGB_PROFILE = _SRGB.tobytes()
_GRID = np.array(np.meshgrid(*[np.linspace(0, 255, 7, dtype=np.uint8)] * 3),
                 dtype=np.uint8).reshape(3, -1).T.reshape(1, -1, 3)


@dataclass(frozen=True)
class Conversion:
    """How one profile's pixels become sRGB: ``None`` members mean "already sRGB"."""

    colour_space: str  # "RGB ", "GRAY", "CMYK", ... from the profile header
    rgb: ImageCms.ImageCmsTransform | None = None  # RGB -> sRGB
    rgba: ImageCms.ImageCmsTransform | None = None  # RGBA -> sRGB, alpha copied
    grey_lut: np.ndarray | None = None  # 256 grey levels -> sRGB levels
    cmyk: ImageCms.ImageCmsTransform | None = None  # CMYK -> sRGB RGB

    @property
    def is_identity(self) -> bool:
        return self.rgb is None and self.grey_lut is None and self.cmyk is None


_cache: OrderedDict[bytes, Conversion | None] = OrderedDict()
_lock = threading.Lock()


def conversion_for(profile: bytes | None) -> Conversion | None:
    """The cached Conversion of ``profile``; None when there is none or LittleCMS cannot
    read it (the pixels are then sRGB, as a browser shows them)."""
    if not profile:
        return None
    if len(profile) > MAX_PROFILE_BYTES:
        raise ImageRejected(f"embedded ICC profile is {len(profile)} bytes, more than "
                            f"{MAX_PROFILE_BYTES}", "icc_profile_too_large")
    digest = hashlib.sha256(profile).digest()
    with _lock:
        if digest in _cache:
            _cache.move_to_end(digest)
            return _cache[digest]
    conversion = _build(profile)
    with _lock:
        _cache[digest] = conversion
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return conversion


def to_srgb(pixels: np.ndarray, profile: bytes | None) -> np.ndarray:
    """``pixels`` (L, RGB or RGBA uint8) in ``profile``'s space, converted to sRGB. The
    same array comes back when nothing needs doing (untagged, sRGB, or a profile that
    does not match the pixel layout, which viewers ignore too)."""
    conversion = conversion_for(profile)
    if conversion is None or conversion.is_identity:
        return pixels
    if conversion.grey_lut is not None:
        # A grey profile is a 1-D curve: applied to grey pixels, or to each colour channel
        # of a grey image that was widened to RGB(A) on decode (R = G = B).
        if pixels.ndim == 2:
            return conversion.grey_lut[pixels]
        out = pixels.copy()
        out[..., :3] = conversion.grey_lut[pixels[..., :3]]
        return out
    if pixels.ndim != 3:
        return pixels  # an RGB profile on grey pixels: viewers ignore it too
    transform = conversion.rgba if pixels.shape[2] == 4 else conversion.rgb
    if transform is None:
        return pixels
    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(ImageCms.applyTransform(image, transform))


def cmyk_to_srgb(image: Image.Image, profile: bytes | None) -> Image.Image | None:
    """A CMYK image converted through its CMYK profile to sRGB RGB; None when it has no
    usable CMYK profile (the caller then uses the plain formula)."""
    conversion = conversion_for(profile)
    if conversion is None or conversion.cmyk is None:
        return None
    return ImageCms.applyTransform(image, conversion.cmyk)


def _build(profile: bytes) -> Conversion | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        space = source.profile.xcolor_space
        if space == "RGB ":
            rgb = _transform(source, "RGB", "RGB")
            if rgb is None or _is_identity(rgb):
                return None if rgb is None else Conversion(space)
            return Conversion(space, rgb=rgb, rgba=_transform(source, "RGBA", "RGBA"))
        if space == "GRAY":
            grey = _transform(source, "L", "RGB")
            if grey is None:
                return None
            ramp = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(1, 256))
            levels = np.asarray(ImageCms.applyTransform(ramp, grey))[0]
            lut = np.round(levels.astype(np.float32).mean(axis=1)).astype(np.uint8)
            identity = np.abs(lut.astype(int) - np.arange(256)).max() <= _IDENTITY_TOLERANCE
            return Conversion(space, grey_lut=None if identity else lut)
        if space == "CMYK":
            cmyk = _transform(source, "CMYK", "RGB")
            return None if cmyk is None else Conversion(space, cmyk=cmyk)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    return None  # Lab, XYZ, n-colour: not a space our decoder hands out


def _transform(source: ImageCms.ImageCmsProfile, in_mode: str, out_mode: str
               ) -> ImageCms.ImageCmsTransform | None:
    """A thread-safe transform (NOCACHE: LittleCMS's one-pixel cache is shared state);
    alpha, if any, is copied through."""
    flags = ImageCms.Flags.NOCACHE
    if in_mode == "RGBA":
        flags |= ImageCms.Flags.COPY_ALPHA
    try:
        return ImageCms.buildTransform(source, _SRGB, in_mode, out_mode,
                                       renderingIntent=ImageCms.Intent.PERCEPTUAL,
                                       flags=flags)
    except ImageCms.PyCMSError:
        return None


def _is_identity(transform: ImageCms.ImageCmsTransform) -> bool:
    """True if ``transform`` leaves every colour of a 7x7x7 grid where it was."""
    moved = np.asarray(ImageCms.applyTransform(Image.fromarray(_GRID), transform))
    return bool(np.abs(moved.astype(int) - _GRID.astype(int)).max() <= _IDENTITY_TOLERANCE)
