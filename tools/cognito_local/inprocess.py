"""Strict Cognito inside `moto.mock_aws()`: a botocore before-send hook ahead of moto's stubber.

botocore emits `before-send.cognito-identity-provider.<Op>` to *every* handler and uses the
first non-None answer. Handlers of a more specific event name run before those of a shorter
one, and moto registers its stubber on plain `before-send`; ours is registered on the
service-specific name and with REGISTER_FIRST, so it always runs first. Because moto's stubber
still runs after us, a refused request is also pointed at an unroutable URL so that moto
ignores it and the refused call has no side effect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from io import BytesIO
from typing import Any, cast

import boto3
from botocore import handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient

from cognito_local.strict import StrictEngine

EVENT = "before-send.cognito-identity-provider"
REFUSED_URL = "https://refused.cognito-local.invalid/"


class _RawBody(BytesIO):
    """What AWSResponse expects of `raw`: a stream()."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class StrictHook:
    """The before-send handler: a no-op once its context has exited."""

    def __init__(self, engine: StrictEngine) -> None:
        self.engine = engine
        self.active = True

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if not self.active:
            return None
        error = self.engine.admit_http(dict(request.headers.items()), request.body, request.url)
        if error is None:
            return None
        url = request.url
        request.url = REFUSED_URL  # moto's stubber (which runs next) matches no backend for it
        return AWSResponse(url, error.status, error.headers(), _RawBody(error.body()))


@contextmanager
def strict_cognito(
    latency: float = 0.0,
    quotas: Mapping[str, float] | None = None,
    enforce_quotas: bool = True,
    *,
    enforce_validation: bool = True,
    clients: Iterable[BaseClient] = (),
) -> Iterator[StrictEngine]:
    """Make Cognito calls strict for clients created inside the block (and for `clients`).

    Use inside `mock_aws()`. Yields the engine for statistics and toggles.
    """
    engine = StrictEngine(
        latency=latency,
        quotas=quotas,
        enforce_quotas=enforce_quotas,
        enforce_validation=enforce_validation,
    )
    hook = StrictHook(engine)
    spec = (EVENT, hook, handlers.REGISTER_FIRST)
    handlers.BUILTIN_HANDLERS.insert(0, spec)  # sessions created from now on
    emitters = [c.meta.events for c in clients]
    if boto3.DEFAULT_SESSION is not None:  # boto3.client() reuses this session's handlers
        emitters.append(boto3.DEFAULT_SESSION.events)
    # botocore-stubs types handlers as returning None; before-send handlers return a response.
    handler = cast("Callable[..., None]", hook)
    for emitter in emitters:
        emitter.register_first(EVENT, handler)
    try:
        yield engine
    finally:
        hook.active = False
        handlers.BUILTIN_HANDLERS.remove(spec)
        for emitter in emitters:
            emitter.unregister(EVENT, handler)
