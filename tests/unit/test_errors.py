"""Errors say where they are raised what they do to a run: stop it, or fail one record."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import (
    AccessDeniedError,
    BackupError,
    CognitoError,
    GroupExistsError,
    GroupNotFoundError,
    PoolNotFoundError,
    StorageError,
    UsageError,
    UserExistsError,
    UserNotFoundError,
)
from cognito_backup.restore.preflight import per_item


def refusal(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("code", "status", "kind", "scope"),
    [
        ("UserNotFoundException", 400, UserNotFoundError, "record"),
        ("UsernameExistsException", 400, UserExistsError, "record"),
        ("GroupExistsException", 400, GroupExistsError, "record"),
        ("InvalidParameterException", 400, UsageError, "record"),  # this request, not the run
        ("SomeNewRefusal", 400, CognitoError, "record"),
        ("AccessDeniedException", 400, AccessDeniedError, "run"),
        ("ResourceNotFoundException", 400, PoolNotFoundError, "run"),
        ("TooManyRequestsException", 400, CognitoError, "run"),  # outlasted every retry: resume later
        ("SomethingBroke", 503, CognitoError, "run"),
    ],
)
def test_the_cognito_adapter_says_what_each_refusal_does(
    code: str, status: int, kind: type, scope: str
) -> None:
    from cognito_backup.cognito import is_transient

    exc = refusal(code, status)
    mapped = CognitoGateway._map_error(code, exc, PoolNotFoundError, transient=is_transient(exc))
    assert isinstance(mapped, kind) and mapped.scope == scope
    assert per_item(mapped) is (scope == "record")


def test_defaults_and_overrides() -> None:
    assert BackupError("x").scope == "run" and UsageError("bad flag").scope == "run"
    assert StorageError("SlowDown", "m").scope == "run"
    assert GroupNotFoundError("g").scope == "record"
    assert UsageError("one request", scope="record").scope == "record"
    assert CognitoError("ConnectionError", "reset", scope="run").scope == "run"
