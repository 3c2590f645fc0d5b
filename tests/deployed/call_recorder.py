"""Records every AWS API call that boto3 clients created inside a `record_calls()` block make.

While the block runs, every botocore client created (by `cognito_backup.aws.AwsClients` or
anything else) gets two event hooks: `before-parameter-build` records the service, the
operation and the parameters as the caller gave them; `after-call` adds what the answer
said that IAM cares about (HTTP status, error code, the object's server-side encryption).
Clients made before the block (test setup: pools, users, the bucket) are not hooked, so
setup calls are never recorded. Calls from worker threads are recorded too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.session import Session

# Response fields kept: enough to know how S3 encrypted an object, how a call ended, and which
# pool a CreateUserPool made (its tags are the aws:ResourceTag of later calls on it).
RESPONSE_FIELDS = ("ServerSideEncryption", "SSEKMSKeyId", "BucketKeyEnabled", "VersionId", "UserPool")
_RECORD = "_recorded_call"


@dataclass
class RecordedCall:
    service: str  # botocore's service name: "s3", "cognito-idp", "kms"
    operation: str  # the API operation: "PutObject", "AdminCreateUser"
    params: dict[str, Any]
    region: str
    status: int | None = None
    error_code: str | None = None
    response: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k not in ("Body", "UserAttributes", "Password")}
        return f"{self.service}:{self.operation}({shown})"


def _copy_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters, without payloads (a body or a password is no business of IAM)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "Body":
            out[key] = "<body>"
        elif key == "Password":
            out[key] = "<password>"
        else:
            out[key] = value
    return out


class CallLog:
    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self._lock = threading.Lock()

    def add(self, call: RecordedCall) -> None:
        with self._lock:
            self.calls.append(call)

    def operations(self) -> list[str]:
        return [f"{c.service}:{c.operation}" for c in self.calls]


def _hook(client: Any, log: CallLog) -> None:
    service = client.meta.service_model.service_name
    region = client.meta.region_name

    def before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        call = RecordedCall(service, model.name, _copy_params(params), region)
        context[_RECORD] = call
        log.add(call)

    def after(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call: RecordedCall | None = context.get(_RECORD)
        if call is None:
            return
        call.status = getattr(http_response, "status_code", None)
        error = parsed.get("Error") or {}
        call.error_code = error.get("Code") or None
        call.response = {k: parsed[k] for k in RESPONSE_FIELDS if k in parsed}

    client.meta.events.register("before-parameter-build", before)
    client.meta.events.register("after-call", after)


@contextmanager
def record_calls() -> Iterator[CallLog]:
    """Hook every client created while the block runs; yield the log of their calls."""
    log = CallLog()
    original = Session.create_client

    def create_client(self: Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        _hook(client, log)
        return client

    Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield log
    finally:
        Session.create_client = original  # type: ignore[method-assign]
