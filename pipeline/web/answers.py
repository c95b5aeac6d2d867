"""How the API answers: who the caller is, the HTTP status of a refusal, and what an
answer may show (never this server's folders, nor details of a storage outage)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from faust.web import Response, View

from pipeline import metrics
from pipeline.errors import ImageRejected, ImgpipeError, SourceNotAllowed
from pipeline.tenancy import ANYONE, NotAuthorized, Principal


class UploadTooLarge(ImgpipeError):
    default_code = "upload_too_large"


def principal_of(request: web.Request) -> Principal:
    """The caller, as the auth middleware named it."""
    return request.get("principal", ANYONE)


def http_status(exc: ImgpipeError) -> int:
    """The HTTP status of a refusal."""
    if exc.retryable:
        return 503
    if isinstance(exc, UploadTooLarge) or exc.code in ("source_too_large", "too_large"):
        return 413
    if exc.code == "source_exists":
        return 409
    if isinstance(exc, SourceNotAllowed | NotAuthorized):
        return 403
    if isinstance(exc, ImageRejected):
        return 422
    return 400


def hide_folders(app: Any, text: str) -> str:
    """``text`` with this server's folders shown as ``<store>``."""
    for folder in app.runtime.private_folders():
        text = text.replace(folder, "<store>")
    return text


def public_message(app: Any, exc: ImgpipeError) -> str:
    """The refusal's message without this server's folders (and no detail at all of a
    storage outage, which only the operator can act on)."""
    if exc.retryable:
        return "storage is unavailable right now; try again later"
    return hide_folders(app, exc.message)


def without_folders(app: Any, view: dict[str, Any]) -> dict[str, Any]:
    """A job's public view whose error names none of this server's folders."""
    error = view.get("error")
    return {**view, "error": hide_folders(app, error)} if isinstance(error, str) else view


def error_response(view: View, exc: ImgpipeError) -> Response:
    """The 4xx/5xx for a refused submission: the message, its code, and a metric."""
    metrics.API_SUBMISSIONS.labels(exc.code).inc()
    return view.json({"error": public_message(view.app, exc), "code": exc.code},
                     status=http_status(exc))
