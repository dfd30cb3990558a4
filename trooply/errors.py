"""Domain errors: a machine-readable code, a message and an HTTP status, mapped in one handler."""

from typing import Any


class TrooplyError(Exception):
    code = "error"
    status = 400
    # Transient errors are worth retrying (timeouts, upstream 5xx/429); the rest are final.
    transient = False

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: Any = None, transient: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if transient is not None:
            self.transient = transient
        self.details = details

    def for_item(self, label: str, index: int) -> "TrooplyError":
        """The same error, naming which item of a list in the request it is about."""
        return type(self)(f"{label}: {self.message}", code=self.code, status=self.status,
                          details={"index": index}, transient=self.transient)


class InvalidRequest(TrooplyError):
    code = "invalid_request"
    status = 422


class NotFound(TrooplyError):
    code = "not_found"
    status = 404


class Conflict(TrooplyError):
    """The request is fine but the resource is not in a state to serve it (yet)."""

    code = "conflict"
    status = 409


class Unauthorized(TrooplyError):
    code = "unauthorized"
    status = 401


class Forbidden(TrooplyError):
    code = "forbidden"
    status = 403


class QuotaExceeded(TrooplyError):
    code = "quota_exceeded"
    status = 403


class PayloadTooLarge(TrooplyError):
    code = "payload_too_large"
    status = 413


class ImageError(TrooplyError):
    """A fetched or uploaded image that cannot be used; `code` says why."""

    code = "invalid_image"
    status = 422


class IndexModelMismatch(TrooplyError):
    code = "index_model_mismatch"
    status = 409


class ServiceUnavailable(TrooplyError):
    code = "service_unavailable"
    status = 503


def byte_size(count: int) -> str:
    """A limit as a person reads it: 10485760 -> "10 MiB", 1536 -> "1.5 KiB", 900 -> "900 bytes"."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"
