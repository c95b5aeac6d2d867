"""Operation registry: op name -> implementation."""

from __future__ import annotations

from pipeline.errors import InvalidRequest
from pipeline.ops.base import Operation
from pipeline.ops.colour import ToSrgb
from pipeline.ops.crop import Crop
from pipeline.ops.encode import Encode
from pipeline.ops.filters import Adjust, Blur, Edges, Sharpen
from pipeline.ops.grayscale import Grayscale
from pipeline.ops.orient import Orient
from pipeline.ops.resize import Resize
from pipeline.ops.rotate import Flip, Rotate
from pipeline.ops.thumbnail import Thumbnail
from pipeline.ops.watermark import Watermark

OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    ToSrgb(), Orient(), Resize(), Thumbnail(), Crop(), Rotate(), Flip(), Grayscale(), Blur(),
    Sharpen(), Adjust(), Edges(), Watermark(), Encode())}


def get_operation(name: object) -> Operation:
    """The operation called ``name`` or InvalidRequest('unknown_op')."""
    if not isinstance(name, str) or name not in OPERATIONS:
        raise InvalidRequest(f"unknown op {name!r}; known ops: {', '.join(sorted(OPERATIONS))}",
                             "unknown_op")
    return OPERATIONS[name]
