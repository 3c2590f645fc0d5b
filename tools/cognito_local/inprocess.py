"""Strict Cognito inside `moto.mock_aws()`: a botocore before-send hook ahead of moto's stubber.

botocore emits `before-send.cognito-identity-provider.<Op>` to *every* handler and uses the
first non-None answer. Handlers of a more specific event name run before those of a shorter
one, and moto registers its stubber on plain `before-send`; ours is registered on the
service-specific name and with REGISTER_FIRST, so it always runs first. Because moto's stubber
still runs after us, a refused request is also pointed at an unroutable URL so that moto
ignores it and the refused call has no side effect.

Faults (`Faults`, see `faults`): a 500 before the effect is a refusal like any other; a 500
*after* the effect runs moto's stubber for the request right here (so moto applies the call:
the user now exists), throws moto's answer away and answers the 500; a reset raises botocore's
`ConnectionClosedError`, as urllib3 does when a connection drops. `faulty_s3` does the same
for S3 clients (S3 has no quotas or rules of ours: faults only).

The operations moto does not implement (`extras`) are answered here: by the strict hook when
one is active, else by `moto_extras()`, a hook that answers only them (no quotas, no rules),
registered behind the strict one and ahead of moto's stubber: plain `mock_aws()` tests use it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from io import BytesIO
from typing import Any, cast

import boto3
from botocore import handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectionClosedError

from cognito_local import extras
from cognito_local.faults import FaultPlan, Faults
from cognito_local.strict import CognitoError, StrictEngine, extra_verdict, request_place

EVENT = "before-send.cognito-identity-provider"
S3_EVENT = "before-send.s3"
REFUSED_URL = "https://refused.cognito-local.invalid/"

S3_INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message>"
    b"<RequestId>0000000000000000</RequestId></Error>"
)


class _RawBody(BytesIO):
    """What AWSResponse expects of `raw`: a stream()."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def _apply_in_moto(event_name: str, request: AWSPreparedRequest) -> None:
    """Let moto apply the request now (its answer is the one that gets lost)."""
    from moto.core.models import botocore_stubber

    if not botocore_stubber.enabled or botocore_stubber(event_name, request) is None:
        raise RuntimeError("a fault after the effect needs moto: use strict_cognito inside mock_aws()")


def _drop(request: AWSPreparedRequest) -> ConnectionClosedError:
    url = request.url
    request.url = REFUSED_URL
    return ConnectionClosedError(endpoint_url=url)


def _answer(request: AWSPreparedRequest, status: int, headers: Mapping[str, str], body: bytes) -> AWSResponse:
    url = request.url
    request.url = REFUSED_URL  # moto's stubber (which runs next) matches no backend for it
    # botocore reads any mapping of headers; its stubs ask for an HTTPMessage.
    return AWSResponse(url, status, cast("HTTPHeaders", dict(headers)), _RawBody(body))


class StrictHook:
    """The before-send handler: a no-op once its context has exited."""

    def __init__(self, engine: StrictEngine) -> None:
        self.engine = engine
        self.active = True

    def __call__(self, request: AWSPreparedRequest, event_name: str = EVENT, **_: Any) -> AWSResponse | None:
        if not self.active:
            return None
        verdict = self.engine.judge_http(dict(request.headers.items()), request.body, request.url)
        if verdict.reset:
            raise _drop(request)
        if verdict.answer is not None:
            return _answer(request, verdict.answer.status, verdict.answer.headers(), verdict.answer.body())
        error: CognitoError | None = verdict.error
        if error is None:
            return None
        if verdict.after_effect:
            _apply_in_moto(event_name, request)
        return _answer(request, error.status, error.headers(), error.body())


class ExtrasHook:
    """A before-send handler answering only the operations moto lacks (`extras.OPERATIONS`)."""

    def __init__(self) -> None:
        self.active = True

    def __call__(self, request: AWSPreparedRequest, event_name: str = EVENT, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if not self.active or operation not in extras.OPERATIONS:
            return None
        body = request.body
        raw = json.loads(body if isinstance(body, str | bytes | bytearray) and body else b"{}")
        account, region = request_place(dict(request.headers.items()), request.url)
        verdict = extra_verdict(operation, raw, account_id=account, region=region)
        made = verdict.answer or verdict.error
        assert made is not None
        return _answer(request, made.status, made.headers(), made.body())


class S3FaultHook:
    """A before-send handler for S3 clients: 500 InternalError before or after the effect, resets."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.active = True

    def __call__(
        self, request: AWSPreparedRequest, event_name: str = S3_EVENT, **_: Any
    ) -> AWSResponse | None:
        if not self.active:
            return None
        operation = event_name.rsplit(".", 1)[-1]
        fault = self.plan.draw(operation, {"method": request.method})
        if fault is None or fault == "storm":
            return None
        self.plan.count(operation, fault)
        if fault == "reset":
            raise _drop(request)
        if fault == "after":
            _apply_in_moto(event_name, request)
        headers = {"Content-Type": "application/xml", "x-amz-request-id": "0000000000000000"}
        return _answer(request, 500, headers, S3_INTERNAL_ERROR)


def _register(emitters: list[Any], event: str, hook: Callable[..., Any]) -> Callable[..., None]:
    # botocore-stubs types handlers as returning None; before-send handlers return a response.
    handler = cast("Callable[..., None]", hook)
    for emitter in emitters:
        emitter.register_first(event, handler)
    return handler


@contextmanager
def strict_cognito(
    latency: float = 0.0,
    quotas: Mapping[str, float] | None = None,
    enforce_quotas: bool = True,
    *,
    enforce_validation: bool = True,
    clients: Iterable[BaseClient] = (),
    faults: Faults | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[StrictEngine]:
    """Make Cognito calls strict for clients created inside the block (and for `clients`).

    Use inside `mock_aws()`. Yields the engine for statistics and toggles. `faults` injects
    Cognito's 500s, resets and throttling storms; `clock` times quotas and storms (a test can
    drive storms with a clock of its own instead of wall time).
    """
    engine = StrictEngine(
        latency=latency,
        quotas=quotas,
        enforce_quotas=enforce_quotas,
        enforce_validation=enforce_validation,
        faults=faults,
        clock=clock,
    )
    hook = StrictHook(engine)
    spec = (EVENT, hook, handlers.REGISTER_FIRST)
    handlers.BUILTIN_HANDLERS.insert(0, spec)  # sessions created from now on
    emitters = [c.meta.events for c in clients]
    if boto3.DEFAULT_SESSION is not None:  # boto3.client() reuses this session's handlers
        emitters.append(boto3.DEFAULT_SESSION.events)
    handler = _register(emitters, EVENT, hook)
    try:
        yield engine
    finally:
        hook.active = False
        handlers.BUILTIN_HANDLERS.remove(spec)
        for emitter in emitters:
            emitter.unregister(EVENT, handler)


@contextmanager
def moto_extras(clients: Iterable[BaseClient] = ()) -> Iterator[None]:
    """Answer the Cognito operations moto lacks for clients created inside the block (and for
    `clients`), with nothing else of the strict layer. Use inside `mock_aws()`."""
    hook = ExtrasHook()
    spec = (EVENT, hook)
    handlers.BUILTIN_HANDLERS.append(spec)
    emitters = [c.meta.events for c in clients]
    if boto3.DEFAULT_SESSION is not None:
        emitters.append(boto3.DEFAULT_SESSION.events)
    handler = cast("Callable[..., None]", hook)
    for emitter in emitters:
        emitter.register(EVENT, handler)
    try:
        yield
    finally:
        hook.active = False
        handlers.BUILTIN_HANDLERS.remove(spec)
        for emitter in emitters:
            emitter.unregister(EVENT, handler)


@contextmanager
def faulty_s3(faults: Faults, clients: Iterable[BaseClient]) -> Iterator[FaultPlan]:
    """Inject S3's faults (500 InternalError before or after the effect, resets) into `clients`.

    Use inside `mock_aws()`. `faults.rate`, `after_effect`, `reset_rate`, `seed` and `operations`
    (S3 operation names: "PutObject") apply; storms do not (no S3 quotas here). Yields the plan,
    whose `stats()` counts the faults injected.
    """
    plan = FaultPlan(faults)
    hook = S3FaultHook(plan)
    emitters = [c.meta.events for c in clients]
    handler = _register(emitters, S3_EVENT, hook)
    try:
        yield plan
    finally:
        hook.active = False
        for emitter in emitters:
            emitter.unregister(S3_EVENT, handler)
