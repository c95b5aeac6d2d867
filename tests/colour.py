"""Colour science for tests: CIEDE2000 between sRGB images, and a CMYK LUT profile.

CIEDE2000 follows Sharma, Wu and Dalal (2005), whose published test pairs
tests/unit/test_colour_management.py checks it against.
"""

from __future__ import annotations

import struct

import numpy as np

from pipeline.imaging.iccbuild import D50, profile_bytes, text_tag, xyz_tag

_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])
_D65 = np.array([0.95047, 1.0, 1.08883])
#: sRGB primaries adapted to D50 (the ICC PCS), for building the CMYK profile's LUT.
_SRGB_TO_XYZ_D50 = np.array([[0.4360747, 0.3850649, 0.1430804],
                             [0.2225045, 0.7168786, 0.0606169],
                             [0.0139322, 0.0971045, 0.7141733]])


def srgb_to_lab(pixels: np.ndarray, white: np.ndarray = _D65,
                matrix: np.ndarray = _SRGB_TO_XYZ) -> np.ndarray:
    """uint8 sRGB (..., 3) -> CIELAB (..., 3), float64."""
    c = pixels[..., :3].astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return xyz_to_lab(linear @ matrix.T, white)


def xyz_to_lab(xyz: np.ndarray, white) -> np.ndarray:
    t = xyz / np.asarray(white)
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference, element-wise over (..., 3) Lab arrays."""
    L1, a1, b1 = np.moveaxis(lab1, -1, 0)
    L2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dLp, dCp = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dHp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    Lp_bar, Cp_bar = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    hp_bar = np.where(np.abs(h1p - h2p) > 180,
                      np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2), h_sum / 2)
    hp_bar = np.where(c1p * c2p == 0, h_sum, hp_bar)
    t = (1 - 0.17 * np.cos(np.radians(hp_bar - 30)) + 0.24 * np.cos(np.radians(2 * hp_bar))
         + 0.32 * np.cos(np.radians(3 * hp_bar + 6)) - 0.20 * np.cos(np.radians(4 * hp_bar - 63)))
    d_theta = 30 * np.exp(-(((hp_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(Cp_bar**7 / (Cp_bar**7 + 25.0**7))
    s_l = 1 + 0.015 * (Lp_bar - 50) ** 2 / np.sqrt(20 + (Lp_bar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * Cp_bar, 1 + 0.015 * Cp_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((dLp / s_l) ** 2 + (dCp / s_c) ** 2 + (dHp / s_h) ** 2
                   + r_t * (dCp / s_c) * (dHp / s_h))


def image_delta_e(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean, max) CIEDE2000 between two sRGB uint8 images of one size."""
    if a.ndim == 2:
        a = np.dstack([a] * 3)
    if b.ndim == 2:
        b = np.dstack([b] * 3)
    d = delta_e_2000(srgb_to_lab(a), srgb_to_lab(b))
    return float(d.mean()), float(d.max())


def cmyk_profile(grid: int = 9) -> bytes:
    """An input-class CMYK -> Lab profile (lut16 A2B0) that is not the plain formula:
    its inks are a little dirty (cyan absorbs some green, yellow some red) and black is
    weaker, like a press profile. 9^4 grid points, 39 KB."""
    axis = np.linspace(0, 1, grid)
    c, m, y, k = np.meshgrid(axis, axis, axis, axis, indexing="ij")
    k_eff = 0.92 * k
    r = (1 - c) * (1 - 0.10 * y) * (1 - k_eff)
    g = (1 - m) * (1 - 0.15 * c) * (1 - k_eff)
    b = (1 - y) * (1 - 0.08 * m) * (1 - k_eff)
    rgb = np.stack([r, g, b], axis=-1)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    lab = xyz_to_lab(linear @ _SRGB_TO_XYZ_D50.T, D50)
    # ICC v2 16-bit Lab encoding (lut16 always uses it): L 0..100 -> 0..0xFF00,
    # a/b -128..127.996 -> 0..0xFFFF.
    encoded = np.stack([lab[..., 0] * 652.80, (lab[..., 1] + 128) * 256,
                        (lab[..., 2] + 128) * 256], axis=-1)
    clut = np.clip(np.round(encoded), 0, 65535).astype(">u2").ravel()
    identity = struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 65536)
    ramp = np.linspace(0, 65535, 256).round().astype(">u2").tobytes()
    lut = (b"mft2\0\0\0\0" + struct.pack(">BBBB", 4, 3, grid, 0) + identity
           + struct.pack(">HH", 256, 256) + ramp * 4 + clut.tobytes() + ramp * 3)
    return profile_bytes(b"prtr", b"CMYK", b"Lab ", [
        (b"desc", text_tag("Test press CMYK")),
        (b"wtpt", xyz_tag(D50)),
        (b"A2B0", lut),
    ])

