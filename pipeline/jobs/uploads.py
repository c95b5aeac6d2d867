"""HTTP job submission without Faust: form fields or a JSON body -> a validated JobRequest,
and an uploaded image -> a checked claim-check object.

Everything here runs before anything is produced, so a bad request is answered with a
4xx and leaves no trace on the topics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import ImageRejected, InvalidRequest
from pipeline.imaging.decode import check_structure, open_checked
from pipeline.models import (
    DEFAULT_TENANT,
    JobRequest,
    check_job_id,
    job_request_from_dict,
    readable_job_id,
    storage_path,
)
from pipeline.ops import parse_variant_specs

#: Fields a submission may carry besides the image (multipart) or source (JSON).
SUBMIT_FIELDS = frozenset({"job_id", "variants", "variant", "preset", "priority", "tenant",
                           "force", "name", "label"})
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif",
               "TIFF": "tif", "BMP": "bmp", "AVIF": "avif", "HEIF": "heic"}


def _variants(value: Any) -> dict[str, list[dict[str, Any]]]:
    """A variants object, a JSON text of one, a list of CLI specs, or nothing (defaults)."""
    if value is None or value == "" or value == []:
        return parse_variant_specs([])
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            return parse_variant_specs([text])
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidRequest(f"variants is not valid JSON: {exc}", "bad_variants") from None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return parse_variant_specs(value)
    if isinstance(value, dict):
        return value
    raise InvalidRequest("variants must be an object {name: [op, ...]} or a list of "
                         "specs like \"thumb=fit:256x256,webp:q80\"", "bad_variants")


def _force(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, "", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise InvalidRequest(f"force must be true or false, got {value!r}", "bad_force")


def job_id_of(fields: Mapping[str, Any]) -> str:
    """The submission's job_id (checked), or a new one people can read: the file name's
    stem and a random part (readable_job_id)."""
    name = fields.get("name")
    return check_job_id(fields.get("job_id") or readable_job_id(
        name if isinstance(name, str) else None))


def build_request(fields: Mapping[str, Any], source: str, tenant: str = DEFAULT_TENANT
                  ) -> JobRequest:
    """A JobRequest from submission fields (shape only; ``admit`` checks the rest).

    ``variant`` (repeated CLI specs) and ``variants`` are alternatives; a missing
    job_id gets a random one, a given one makes the submission idempotent. ``tenant``
    is the caller's, used when the fields name none.
    """
    unknown = sorted(set(fields) - SUBMIT_FIELDS - {"source"})
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)} (accepted: source or "
                             f"an image upload, {', '.join(sorted(SUBMIT_FIELDS))})",
                             "unknown_field")
    given = [f for f in ("variants", "variant", "preset") if fields.get(f) not in (None, "", [])]
    if len(given) > 1:
        raise InvalidRequest(f"give one of variants, variant or preset, not {' and '.join(given)}",
                             "bad_variants")
    data: dict[str, Any] = {
        "job_id": job_id_of(fields),
        "source": source,
        "variants": {} if given == ["preset"] else _variants(fields.get("variants")
                                                             or fields.get("variant")),
        "tenant": fields.get("tenant") or tenant,
        "force": _force(fields.get("force")),
        "submitted_at": time.time(),
    }
    if fields.get("priority"):
        data["priority"] = fields["priority"]
    for optional in ("name", "label", "preset"):
        if fields.get(optional) not in (None, ""):
            data[optional] = fields[optional]
    return job_request_from_dict(data)


def check_upload(path: Path, max_pixels: int) -> str:
    """The file extension for an uploaded image whose header passes the worker's checks;
    ImageRejected otherwise (not an image, unsupported, too many pixels)."""
    if path.stat().st_size == 0:
        raise ImageRejected("the uploaded image is empty (0 bytes)", "empty_source")
    check_structure(path.read_bytes())
    with path.open("rb") as stream, open_checked(stream, max_pixels) as image:
        return _EXTENSIONS[image.format or ""]


def source_key(job_id: str, suffix: str) -> str:
    """The claim-check key of a submitted source, in the data-lake layout
    ``sources/dt=YYYY-MM-DD/<job_id>/source<suffix>`` (suffix: ".jpg", or "")."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return f"sources/dt={day}/{storage_path(job_id)}/source{suffix}"
