"""Presets and storage-event routes: the IMGPIPE_RULES_FILE (TOML), checked at start.

    [presets.web]                       # named variant sets, by CLI spec or op list
    thumb = "fit:256x256,webp:q80"
    large = "fit:1280x1280,jpeg:q85"

    [[routes]]                          # first match wins; no match: counted, dropped
    bucket = "uploads"
    prefix = "incoming/"
    content_types = ["image/jpeg", "image/png"]   # optional: any
    min_bytes = 1                                 # optional
    max_bytes = 20_000_000                        # optional
    preset = "web"
    tenant = "acme"                               # optional: the default tenant
    priority = "normal"                           # optional: the tenant's rule

The preset ``default`` (README's default variants) exists unless the file redefines it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, InvalidRequest
from pipeline.models import DEFAULT_TENANT, PRIORITIES, TENANT_RE, VARIANT_RE
from pipeline.ops import Limits, compile_variants, parse_variant_specs
from pipeline.ops.spec import parse_variant_spec

#: Routes and presets one file may hold (each is checked at start and matched per event).
MAX_ROUTES, MAX_PRESETS = 200, 200
#: GCS bucket names: 3-222 characters (what a notification may name).
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$")
_ROUTE_KEYS = {"bucket", "prefix", "content_types", "min_bytes", "max_bytes", "preset",
               "tenant", "priority"}


@dataclass(frozen=True)
class StoredObject:
    """An object a storage notification announces (pipeline/jobs/storage_events.py)."""

    bucket: str
    name: str
    generation: str
    event: str  # finalize, delete, metadata_update, archive
    content_type: str | None = None
    size: int | None = None
    created_at: float | None = None

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


@dataclass(frozen=True)
class Route:
    """Which uploads become jobs, and how."""

    bucket: str
    preset: str
    prefix: str = ""
    content_types: tuple[str, ...] = ()
    min_bytes: int = 0
    max_bytes: int | None = None
    tenant: str = DEFAULT_TENANT
    priority: str | None = None

    def takes_all_of(self, later: Route) -> bool:
        """True if every object ``later`` would match matches this route first."""
        return (self.bucket == later.bucket and later.prefix.startswith(self.prefix)
                and not self.content_types and self.min_bytes == 0
                and self.max_bytes is None)

    def matches(self, obj: StoredObject) -> bool:
        if obj.bucket != self.bucket or not obj.name.startswith(self.prefix):
            return False
        if self.content_types and (obj.content_type or "").lower() not in self.content_types:
            return False
        size = obj.size if obj.size is not None else 0
        return size >= self.min_bytes and (self.max_bytes is None or size <= self.max_bytes)


@dataclass(frozen=True)
class Rules:
    presets: dict[str, dict[str, list[dict[str, Any]]]]
    routes: tuple[Route, ...] = field(default_factory=tuple)

    def preset(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """The variants of preset ``name``; InvalidRequest ``unknown_preset`` if none."""
        if name not in self.presets:
            known = ", ".join(sorted(self.presets)[:20])
            raise InvalidRequest(f"no preset {name[:64]!r} (known: {known})", "unknown_preset")
        return self.presets[name]

    def route_for(self, obj: StoredObject) -> Route | None:
        """The first route that takes ``obj``, None if none does."""
        return next((route for route in self.routes if route.matches(obj)), None)


def default_rules() -> Rules:
    return Rules({"default": parse_variant_specs([])})


def load_rules(path: str, limits: Limits, max_variants: int) -> Rules:
    """The rules in ``path`` (empty: only the default preset); ConfigError naming the
    file and the entry at fault."""
    if not path:
        return default_rules()
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"IMGPIPE_RULES_FILE: cannot read {path} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"IMGPIPE_RULES_FILE {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"presets", "routes"})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)} (expected "
                          "[presets.NAME] and [[routes]])")
    presets = {**default_rules().presets, **_presets(path, data.get("presets", {}), limits,
                                                      max_variants)}
    routes = _routes(path, data.get("routes", []), presets)
    return Rules(presets, routes)


def _presets(path: str, raw: Any, limits: Limits, max_variants: int
             ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    if not isinstance(raw, dict) or len(raw) > MAX_PRESETS:
        raise ConfigError(f"{path}: [presets] must be at most {MAX_PRESETS} tables "
                          "[presets.NAME]")
    presets = {}
    for name, variants in raw.items():
        where = f"{path}: preset {name!r}"
        if not VARIANT_RE.match(name) or not isinstance(variants, dict) or not variants:
            raise ConfigError(f"{where}: needs a name of letters, digits, '_' or '-' and at "
                              "least one variant (NAME = \"SPEC\" or NAME = [ops])")
        try:
            ops = {variant: (parse_variant_spec(f"{variant}={spec}")[1]
                             if isinstance(spec, str) else spec)
                   for variant, spec in variants.items()}
            compile_variants(ops, limits, max_variants)
        except InvalidRequest as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        presets[name] = ops
    return presets


def _routes(path: str, raw: Any, presets: dict[str, Any]) -> tuple[Route, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ROUTES:
        raise ConfigError(f"{path}: routes must be at most {MAX_ROUTES} [[routes]] tables")
    routes = []
    for number, entry in enumerate(raw, 1):
        where = f"{path}: route #{number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(entry) - _ROUTE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (accepted: "
                              f"{', '.join(sorted(_ROUTE_KEYS))})")
        try:
            route = _route(entry, presets)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        for earlier, before in enumerate(routes, 1):
            if before.takes_all_of(route):
                raise ConfigError(f"{where} can never match: route #{earlier} before it "
                                  "takes every object it would (first match wins)")
        routes.append(route)
    return tuple(routes)


def _route(entry: dict[str, Any], presets: dict[str, Any]) -> Route:
    bucket, preset = entry.get("bucket"), entry.get("preset")
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("bucket is required")
    if preset not in presets:
        raise ValueError(f"preset {preset!r} is not defined (defined: "
                         f"{', '.join(sorted(presets))})")
    prefix = entry.get("prefix", "")
    types = entry.get("content_types", [])
    if not isinstance(prefix, str) or not isinstance(types, list) or not all(
            isinstance(t, str) for t in types):
        raise ValueError("prefix must be text and content_types a list of texts")
    sizes = [entry.get("min_bytes", 0), entry.get("max_bytes")]
    if not all(s is None or (isinstance(s, int) and not isinstance(s, bool) and s >= 0)
               for s in sizes):
        raise ValueError("min_bytes and max_bytes must be whole numbers of bytes")
    if sizes[1] is not None and (sizes[0] or 0) > sizes[1]:
        raise ValueError(f"can never match: min_bytes {sizes[0]} is more than max_bytes "
                         f"{sizes[1]}")
    if not BUCKET_RE.match(bucket):
        raise ValueError(f"can never match: {bucket[:100]!r} is not a bucket name (3-222 "
                         "lower-case letters, digits, '.', '_' or '-')")
    if not all(_CONTENT_TYPE.match(t) for t in types):
        raise ValueError("can never match: content_types must be MIME types like "
                         "\"image/jpeg\"")
    tenant = entry.get("tenant", DEFAULT_TENANT)
    if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
        raise ValueError("tenant must be 1-64 letters, digits, '.', '_' or '-'")
    priority = entry.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
    return Route(bucket, preset, prefix, tuple(t.lower() for t in types), sizes[0] or 0,
                 sizes[1], tenant, priority)
