"""Reading a request body whole, within a limit, once."""

from __future__ import annotations

from aiohttp import web

from pipeline.errors import InvalidRequest

_BODY = "imgpipe.body"


class BodyTooLarge(InvalidRequest):
    """The request body is larger than its endpoint accepts (HTTP 413)."""

    default_code = "too_large"


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body (however many segments or chunks it arrives in), or BodyTooLarge
    as soon as it passes ``limit`` bytes. Read once: later calls get the same bytes."""
    if _BODY in request:
        return request[_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is {request.content_length} bytes, more than "
                           f"{limit}", "too_large")
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is more than {limit} bytes", "too_large")
        chunks.append(chunk)
    request[_BODY] = body = b"".join(chunks)
    return body
