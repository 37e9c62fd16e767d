"""One error hierarchy for every Cairn service, with stable codes.

No web imports here: `api/` maps `code` to HTTP statuses and GraphQL `extensions.code`.
"""

from __future__ import annotations


class CairnError(Exception):
    """Root of every error a Cairn service raises on purpose."""

    code = "INTERNAL"
    denied = False  # a refusal: the unit of work audits it as DENIED (set by `UnitOfWork.refuse`)

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidArgument(CairnError):
    code = "INVALID_ARGUMENT"


class Unauthenticated(CairnError):
    code = "UNAUTHENTICATED"


class PermissionDenied(CairnError):
    code = "PERMISSION_DENIED"


class NotFound(CairnError):
    code = "NOT_FOUND"


class AlreadyExists(CairnError):
    code = "ALREADY_EXISTS"


class Conflict(CairnError):
    code = "CONFLICT"


class FailedPrecondition(CairnError):
    code = "FAILED_PRECONDITION"


class Unavailable(CairnError):
    code = "UNAVAILABLE"


class Internal(CairnError):
    code = "INTERNAL"


class PromotionRefused(FailedPrecondition):
    """A promotion whose gates did not all pass; `results` holds every gate's result."""

    def __init__(self, message: str, results: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.results = results or []
