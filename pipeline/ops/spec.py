"""The compact variant spec of the CLI: ``thumb=fit:256x256,webp:q80``.

Grammar: ``NAME=TOKEN[,TOKEN...]``; each token is ``word[:arg]``:

    fit:WxH | fill:WxH | cover:WxH | exact:WxH   resize with that mode (W or H may be 0)
    w:W | h:H                                     resize by one side (fit)
    jpeg[:qN] | webp[:qN][:mN][:lossless] | png   encode
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import InvalidRequest

DEFAULT_VARIANTS = {
    "thumb": "fit:256x256,webp:q80",
    "large": "fit:1280x1280,jpeg:q85",
}


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x", 1)
        return int(w or 0), int(h or 0)
    except ValueError:
        raise InvalidRequest(f"size must be WxH, got {text!r}", "bad_spec") from None


def _token_to_op(token: str) -> dict[str, Any]:
    word, _, rest = token.partition(":")
    word = word.strip().lower()
    if word in ("fit", "fill", "cover", "exact"):
        width, height = _size(rest)
        return {"op": "resize", "width": width, "height": height, "mode": word}
    if word in ("w", "h"):
        try:
            value = int(rest)
        except ValueError:
            raise InvalidRequest(f"{word}: needs a number, got {rest!r}", "bad_spec") from None
        return {"op": "resize", ("width" if word == "w" else "height"): value}
    if word in ("jpeg", "jpg", "webp", "png"):
        op: dict[str, Any] = {"op": "encode", "format": "jpeg" if word == "jpg" else word}
        for arg in filter(None, rest.split(":")):
            if arg == "lossless":
                op["lossless"] = True
            elif arg == "progressive":
                op["progressive"] = True
            elif arg[:1] in ("q", "m") and arg[1:].isdigit():
                op["quality" if arg[0] == "q" else "method"] = int(arg[1:])
            else:
                raise InvalidRequest(f"{word}: unknown option {arg!r}", "bad_spec")
        return op
    raise InvalidRequest(f"unknown spec token {token!r}", "bad_spec")


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
