"""The compact variant spec of the CLI: ``thumb=fit:256x256,webp:q80``.

Grammar: ``NAME=TOKEN[,TOKEN...]``; each token is ``word[:arg...]``, parsed by the op that
declares the word (``Operation.spec_words`` / ``from_spec``):

    fit:WxH | fill:WxH | cover:WxH | exact:WxH   resize with that mode (W or H may be 0)
    w:W | h:H                                     resize by one side (fit)
    thumbnail:N[:square]                          fit (or fill) an N x N box
    crop:WxH[:GRAVITY] | crop:WxH:X:Y             crop by gravity or at a point
    rotate:DEG | flip:h|v|both | noorient         geometry; noorient keeps EXIF rotation
    srgb                                          (implicit) source profile -> sRGB
    gray | blur[:SIGMA] | sharpen[:AMOUNT] | bright:B | contrast:C | edges[:LOW:HIGH]
    wm:TEXT                                       text watermark, bottom right
    jpeg[:qN][:progressive] | webp[:qN][:mN][:lossless] | png | avif[:qN][:sN]
    jxl[:qN][:eN][:lossless] | gif                 (webp and gif take :animated)
    ...[:keepmeta][:srcgamut]                     on any encode token: keep EXIF/ICC;
                                                  keep the source's colour space
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import InvalidRequest
from pipeline.ops.base import Operation
from pipeline.ops.registry import OPERATIONS

DEFAULT_VARIANTS = {
    "thumb": "fit:256x256,webp:q80",
    "large": "fit:1280x1280,jpeg:q85",
}


def spec_table() -> dict[str, Operation]:
    """Spec word -> the registered op that declares it."""
    return {word: op for op in OPERATIONS.values() for word in op.spec_words}


def _token_to_op(token: str) -> dict[str, Any]:
    """One ``word[:arg...]`` token -> its JSON op (the op that declares the word)."""
    word, _, rest = token.partition(":")
    word = word.strip().lower()
    operation = spec_table().get(word)
    if operation is None:
        raise InvalidRequest(f"unknown spec token {token!r}", "bad_spec")
    return operation.from_spec(word, rest.split(":") if rest else [])


def parse_variant_spec(spec: str) -> tuple[str, list[dict[str, Any]]]:
    """``'thumb=fit:256x256,webp:q80'`` -> ``('thumb', [resize op, encode op])``."""
    name, sep, body = spec.partition("=")
    if not sep or not name.strip() or not body.strip():
        raise InvalidRequest(f"variant spec must be NAME=OPS, got {spec!r}", "bad_spec")
    return name.strip(), [_token_to_op(t) for t in body.split(",") if t.strip()]


def parse_variant_specs(specs: list[str] | tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Several specs (or the defaults when none) -> the JobRequest variants object."""
    chosen = list(specs) or [f"{k}={v}" for k, v in DEFAULT_VARIANTS.items()]
    variants: dict[str, list[dict[str, Any]]] = {}
    for spec in chosen:
        name, ops = parse_variant_spec(spec)
        if name in variants:
            raise InvalidRequest(f"variant {name!r} given twice", "bad_spec")
        variants[name] = ops
    return variants
