"""The compact variant spec of the CLI: ``thumb=fit:256x256,webp:q80``.

Grammar: ``NAME=TOKEN[,TOKEN...]``; each token is ``word[:arg...]``:

    fit:WxH | fill:WxH | cover:WxH | exact:WxH   resize with that mode (W or H may be 0)
    w:W | h:H                                     resize by one side (fit)
    thumbnail:N[:square]                          fit (or fill) an N x N box
    crop:WxH[:GRAVITY] | crop:WxH:X:Y             crop by gravity or at a point
    rotate:DEG | flip:h|v|both | noorient         geometry; noorient keeps EXIF rotation
    gray | blur[:SIGMA] | sharpen[:AMOUNT] | bright:B | contrast:C | edges[:LOW:HIGH]
    wm:TEXT                                       text watermark, bottom right
    jpeg[:qN][:progressive] | webp[:qN][:mN][:lossless] | png | avif[:qN][:sN]
    ...[:keepmeta]                                on any encode token: keep EXIF/ICC
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


def _number(word: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidRequest(f"{word}: needs a number, got {text!r}", "bad_spec") from None


_FLIPS = {"h": "horizontal", "v": "vertical", "both": "both"}


def _token_to_op(token: str) -> dict[str, Any]:
    word, _, rest = token.partition(":")
    word = word.strip().lower()
    args = rest.split(":") if rest else []
    if word == "thumbnail":
        return {"op": "thumbnail", "size": int(_number(word, args[0] if args else "")),
                "square": "square" in args[1:]}
    if word == "crop":
        width, height = _size(args[0] if args else "")
        op: dict[str, Any] = {"op": "crop", "width": width, "height": height}
        if len(args) == 3:
            op.update(x=int(_number(word, args[1])), y=int(_number(word, args[2])))
        elif len(args) == 2:
            op["gravity"] = args[1]
        return op
    if word == "rotate":
        return {"op": "rotate", "angle": _number(word, rest)}
    if word == "flip":
        return {"op": "flip", "direction": _FLIPS.get(rest, rest)}
    if word == "noorient":
        return {"op": "orient", "auto": False}
    if word in ("gray", "grayscale"):
        return {"op": "grayscale"}
    if word == "blur":
        return {"op": "blur", **({"sigma": _number(word, rest)} if rest else {})}
    if word == "sharpen":
        return {"op": "sharpen", **({"amount": _number(word, rest)} if rest else {})}
    if word == "bright":
        return {"op": "adjust", "brightness": _number(word, rest)}
    if word == "contrast":
        return {"op": "adjust", "contrast": _number(word, rest)}
    if word == "edges":
        op = {"op": "edges"}
        if len(args) == 2:
            op.update(low=_number(word, args[0]), high=_number(word, args[1]))
        return op
    if word == "wm":
        return {"op": "watermark", "text": rest}
    if word in ("fit", "fill", "cover", "exact"):
        width, height = _size(rest)
        return {"op": "resize", "width": width, "height": height, "mode": word}
    if word in ("w", "h"):
        try:
            value = int(rest)
        except ValueError:
            raise InvalidRequest(f"{word}: needs a number, got {rest!r}", "bad_spec") from None
        return {"op": "resize", ("width" if word == "w" else "height"): value}
    if word in ("jpeg", "jpg", "webp", "png", "avif"):
        op = {"op": "encode", "format": "jpeg" if word == "jpg" else word}
        for arg in filter(None, args):
            if arg in ("lossless", "progressive"):
                op[arg] = True
            elif arg == "keepmeta":
                op["keep_metadata"] = True
            elif arg[:1] in ("q", "m", "s") and arg[1:].isdigit():
                op[{"q": "quality", "m": "method", "s": "speed"}[arg[0]]] = int(arg[1:])
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
