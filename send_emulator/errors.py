"""The faults the emulated ClabService answers with.

Each fault carries a machine-readable code (in the SOAP fault detail, as
`ClabServiceFault/code`) so that a client can tell them apart without
parsing messages, and, for invalid data, the name of the offending field.
"""

from __future__ import annotations

AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - a fault code
USERDB_NOT_FOUND = "USERDB_NOT_FOUND"
USERDB_LOCKED = "USERDB_LOCKED"
USERDB_READ_ONLY = "USERDB_READ_ONLY"
SUBSCRIBER_NOT_FOUND = "SUBSCRIBER_NOT_FOUND"
WEBFORM_NOT_FOUND = "WEBFORM_NOT_FOUND"
INVALID_DATA = "INVALID_DATA"
INVALID_REQUEST = "INVALID_REQUEST"
RATE_LIMITED = "RATE_LIMITED"
SERVER_ERROR = "SERVER_ERROR"

# Faults caused by the caller are `soap:Client`, the others `soap:Server`.
_SERVER_SIDE = {USERDB_LOCKED, RATE_LIMITED, SERVER_ERROR}


class ServiceFault(Exception):
    """An error the service reports to the caller as a SOAP fault."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        http_status: int = 500,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.http_status = http_status

    @property
    def soap_code(self) -> str:
        return "Server" if self.code in _SERVER_SIDE else "Client"


def invalid_data(field: str, reason: str) -> ServiceFault:
    """Return the fault for a value or field name the userdb cannot take."""
    return ServiceFault(
        INVALID_DATA, f"invalid data for field {field}: {reason}", field=field
    )


def userdb_not_found(userdb_id: int) -> ServiceFault:
    return ServiceFault(USERDB_NOT_FOUND, f"userdb {userdb_id} does not exist")
