"""Test images built in code: exact pixel content, any format."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def quadrants(width: int = 200, height: int = 100) -> np.ndarray:
    """RGB image: red top-left, green top-right, blue bottom-left, white bottom-right."""
    img = np.zeros((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    img[:h2, :w2] = (255, 0, 0)
    img[:h2, w2:] = (0, 255, 0)
    img[h2:, :w2] = (0, 0, 255)
    img[h2:, w2:] = (255, 255, 255)
    return img


def encode(pixels: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def open_bytes(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two images (grey, 11 px Gaussian window)."""
    import cv2

    def grey(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        return x if x.ndim == 2 else x[..., :3] @ np.array([0.299, 0.587, 0.114])

    x, y = grey(a), grey(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map.mean())


#: Photographs scikit-image ships in its wheel (no download): the near-duplicate set.
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field",
          "immunohistochemistry", "moon", "rocket", "logo")


def photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs as RGB uint8."""
    from skimage import data

    pixels = getattr(data, name)()
    if pixels.ndim == 2:
        pixels = np.dstack([pixels] * 3)
    return np.ascontiguousarray(pixels[..., :3])


def derivatives(pixels: np.ndarray) -> list[bytes]:
    """What near-duplicate search must find: a 60 % copy recompressed at JPEG q60, and a
    copy with 1.5 % cut off every edge at q85."""
    import cv2

    height, width = pixels.shape[:2]
    smaller = cv2.resize(pixels, (int(width * 0.6), int(height * 0.6)),
                         interpolation=cv2.INTER_AREA)
    dy, dx = max(1, int(height * 0.015)), max(1, int(width * 0.015))
    cropped = np.ascontiguousarray(pixels[dy:height - dy, dx:width - dx])
    return [encode(smaller, "JPEG", quality=60), encode(cropped, "JPEG", quality=85)]
