"""The gateway retries every transient error with backoff, and only a definite refusal fails."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from cognito_backup.cognito import CognitoGateway, is_transient
from cognito_backup.errors import AccessDeniedError, CognitoError, UsageError
from cognito_backup.pacing import Pacer

URL = "https://cognito-idp.us-east-1.amazonaws.com/"


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DescribeUserPool",
    )


class ScriptedClient:
    """Raises each scripted exception in turn, then answers."""

    class meta:
        region_name = "us-east-1"

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def describe_user_pool(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"UserPool": {"Id": "p"}}


def gateway(client: ScriptedClient, slept: list[float] | None = None, **kwargs: Any) -> CognitoGateway:
    sink = slept if slept is not None else []
    return CognitoGateway(client, Pacer(quotas={}), sleep=sink.append, **kwargs)


TRANSIENT: list[Exception] = [
    client_error("InternalErrorException", 500),
    client_error("SomethingNewAndBroken", 500),  # a 5xx by its status, whatever its code
    client_error("ServiceUnavailable", 503),
    client_error("BadGateway", 502),
    client_error("TooManyRequestsException", 400),
    client_error("ThrottlingException", 400),
    client_error("SlowDown", 429),
    client_error("RequestTimeoutException", 408),
    ConnectionClosedError(endpoint_url=URL),
    EndpointConnectionError(endpoint_url=URL),
    ReadTimeoutError(endpoint_url=URL),
    ConnectTimeoutError(endpoint_url=URL),
    ResponseStreamingError(error="connection reset by peer"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__ + ":" + str(e)[:40])
def test_each_transient_error_is_retried_with_backoff(error: Exception) -> None:
    client = ScriptedClient([error, error])
    slept: list[float] = []
    gw = gateway(client, slept, base_delay=0.1)
    assert gw.describe_pool("p") == {"Id": "p"}
    assert client.calls == 3 and gw.stats.retried == 2
    assert len(slept) == 2 and 0.05 <= slept[0] <= 0.1 and 0.1 <= slept[1] <= 0.2  # exponential, jittered


@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        (client_error("NotAuthorizedException", 400), AccessDeniedError),
        (client_error("InvalidParameterException", 400), UsageError),
        (client_error("UserLambdaValidationException", 400), CognitoError),
    ],
)
def test_a_definite_refusal_fails_at_once(error: Exception, mapped: type[Exception]) -> None:
    client = ScriptedClient([error])
    gw = gateway(client)
    with pytest.raises(mapped):
        gw.call("describe_user_pool", UserPoolId="p")
    assert client.calls == 1 and gw.stats.retried == 0


def test_retries_give_up_after_max_attempts_with_the_last_error() -> None:
    client = ScriptedClient(
        [client_error("InternalErrorException", 500)] * 3 + [ConnectionClosedError(endpoint_url=URL)] * 9
    )
    gw = gateway(client, max_attempts=4)
    with pytest.raises(CognitoError, match="ConnectionError"):
        gw.describe_pool("p")
    assert client.calls == 4
    client = ScriptedClient([client_error("Oops", 500)] * 9)
    with pytest.raises(CognitoError, match="Oops"):
        gateway(client, max_attempts=3).describe_pool("p")


def test_transient_is_decided_by_code_or_status() -> None:
    assert is_transient(client_error("InternalErrorException", 400))
    assert is_transient(client_error("WhoKnows", 504))
    assert not is_transient(client_error("UsernameExistsException", 400))
    assert not is_transient(ClientError({"Error": {"Code": "X"}}, "Op"))  # no status at all
