"""Image operations: declarative op chains validated once and run off the event loop."""

from pipeline.ops.base import Frame, Limits
from pipeline.ops.chain import Chain, compile_chain, compile_variants
from pipeline.ops.encode import Encoded
from pipeline.ops.spec import DEFAULT_VARIANTS, parse_variant_specs

__all__ = ["DEFAULT_VARIANTS", "Chain", "Encoded", "Frame", "Limits", "compile_chain",
           "compile_variants", "parse_variant_specs"]
