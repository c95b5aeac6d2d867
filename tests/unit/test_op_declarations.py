"""One declaration per operation: its params validate JSON, its spec words parse the
compact CLI spec, and it says whether it shares downscales. Adding an op is one module
plus one registry line; nothing else names ops."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.errors import InvalidRequest
from pipeline.imaging.decode import decode
from pipeline.ops import Limits, compile_chain, parse_variant_specs
from pipeline.ops.base import Frame, Operation, Param, spec_number
from pipeline.ops.registry import OPERATIONS
from pipeline.ops.spec import spec_table
from tests.images import encode, open_bytes, quadrants

LIMITS = Limits()


class Posterize(Operation):
    """An op a newcomer might add: everything it needs is in this class."""

    name = "posterize"
    scale_invariant = True
    params = (Param("levels", int, 4, minimum=2, maximum=64),)
    spec_words = ("poster",)

    def from_spec(self, word: str, args: list[str]) -> dict[str, Any]:
        return {"op": "posterize", **({"levels": int(spec_number(word, args[0]))}
                                      if args else {})}

    def apply(self, frame: Frame, args: dict[str, Any]) -> Frame:
        step = 256 // args["levels"]
        return frame.replace((frame.pixels // step * step).astype(np.uint8))


def test_every_spec_word_belongs_to_exactly_one_op():
    words = [w for op in OPERATIONS.values() for w in op.spec_words]
    assert len(words) == len(set(words))
    assert all(op.spec_words for op in OPERATIONS.values())
    assert set(spec_table().values()) <= set(OPERATIONS.values())


@pytest.mark.parametrize("token", sorted(spec_table()))
def test_each_spec_word_makes_an_op_its_declaration_accepts(token):
    examples = {"crop": "crop:10x10", "rotate": "rotate:90", "flip": "flip:h",
                "bright": "bright:0.1", "contrast": "contrast:1.2", "wm": "wm:hi",
                "thumbnail": "thumbnail:32", "fit": "fit:32x32", "fill": "fill:32x32",
                "cover": "cover:32x32", "exact": "exact:32x32", "w": "w:32", "h": "h:32"}
    [ops] = parse_variant_specs([f"v={examples.get(token, token)}"]).values()
    assert ops[0]["op"] == spec_table()[token].name
    compile_chain(ops, LIMITS)  # the op's own params validate what its spec made


def test_a_new_op_is_one_class_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(OPERATIONS, "posterize", Posterize())  # the registry line
    variants = parse_variant_specs(["p=poster:2,png"])
    assert variants == {"p": [{"op": "posterize", "levels": 2}, {"op": "encode",
                                                                  "format": "png"}]}
    frame = decode(encode(quadrants(40, 20)), max_pixels=10**6)
    out = open_bytes(compile_chain(variants["p"], LIMITS).run(frame, LIMITS).data)
    assert set(np.unique(np.asarray(out))) <= {0, 128}
    with pytest.raises(InvalidRequest) as refused:  # JSON validated from its params
        compile_chain([{"op": "posterize", "levels": 1}], LIMITS)
    assert refused.value.code == "bad_param"


def test_the_sharing_rule_comes_from_each_op():
    resize, thumbnail = OPERATIONS["resize"], OPERATIONS["thumbnail"]
    assert resize.plain_downscale({"mode": "fit"}) and not resize.plain_downscale(
        {"mode": "fill"})
    assert thumbnail.plain_downscale({"square": False})
    assert not thumbnail.plain_downscale({"square": True})
    assert not any(op.plain_downscale({}) for name, op in OPERATIONS.items()
                   if name not in ("resize", "thumbnail"))
