"""Operation registry: op name -> implementation."""

from __future__ import annotations

from pipeline.errors import InvalidRequest
from pipeline.ops.base import Operation
from pipeline.ops.encode import Encode
from pipeline.ops.resize import Resize

OPERATIONS: dict[str, Operation] = {op.name: op for op in (Resize(), Encode())}


def get_operation(name: object) -> Operation:
    """The operation called ``name`` or InvalidRequest('unknown_op')."""
    if not isinstance(name, str) or name not in OPERATIONS:
        raise InvalidRequest(f"unknown op {name!r}; known ops: {', '.join(sorted(OPERATIONS))}",
                             "unknown_op")
    return OPERATIONS[name]
