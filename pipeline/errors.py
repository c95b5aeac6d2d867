"""The one exception hierarchy of imgpipe.

    ImgpipeError                 code + safe public message
    ├── ConfigError              bad settings or arguments: fix and restart
    ├── PermanentError           retrying cannot help -> dead-letter, state REJECTED/FAILED
    │   ├── InvalidRequest       malformed event, unknown op, bad parameter, limits
    │   ├── ImageRejected        corrupt, hostile or unsupported image
    │   └── SourceNotAllowed     URI outside the allowed schemes/roots, path traversal
    └── RetryableError           transient: storage/metadata/network -> retry topic
        ├── StorageUnavailable
        └── MetadataUnavailable

Adapters convert their backend's exceptions into these at the boundary
(``raise StorageUnavailable(...) from exc``); agents only ever branch on
``retryable``.
"""

from __future__ import annotations


class ImgpipeError(Exception):
    """Root error: ``code`` is machine-readable, ``message`` is safe to show users."""

    retryable = False
    default_code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ConfigError(ImgpipeError):
    default_code = "config"


def broker_unreachable(bootstrap: str, exc: object) -> ConfigError:
    """The error every command gives when Kafka does not answer."""
    return ConfigError(f"cannot reach Kafka at {bootstrap} ({exc}); start it with "
                       "`imgpipe kafka up` or set IMGPIPE_BROKER")


class PermanentError(ImgpipeError):
    default_code = "permanent"


class InvalidRequest(PermanentError):
    default_code = "invalid_request"


class ImageRejected(PermanentError):
    default_code = "bad_image"


class SourceNotAllowed(PermanentError):
    default_code = "source_not_allowed"


class SourceNotFound(PermanentError):
    default_code = "source_not_found"


class RetryableError(ImgpipeError):
    retryable = True
    default_code = "transient"


class StorageUnavailable(RetryableError):
    default_code = "storage_unavailable"


class MetadataUnavailable(RetryableError):
    default_code = "metadata_unavailable"
