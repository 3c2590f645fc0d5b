"""Strict Cognito over HTTP: moto's server (every service) behind a WSGI middleware.

`python -m cognito_local.server --port 5000` serves until interrupted. Besides AWS, the
middleware answers `GET /_cognito_local/stats` and `POST /_cognito_local/reset`.

Faults (`--fault-rate`, `--reset-rate`, `--storm-every`, ...; `LocalAws(faults=Faults(...))`):
a 500 after the effect passes the request to moto, throws its answer away and sends the 500;
a reset shuts the connection's socket without an answer (botocore: ConnectionClosedError).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from io import BytesIO
from types import TracebackType
from typing import Any

from cognito_local.faults import Faults
from cognito_local.strict import StrictEngine

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_REASONS = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}
CONTROL_PREFIX = "/_cognito_local/"


class StrictMiddleware:
    """Applies a `StrictEngine` to cognito-idp requests (by X-Amz-Target) before moto sees them."""

    def __init__(self, app: WsgiApp, engine: StrictEngine) -> None:
        self.app = app
        self.engine = engine

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PREFIX):
            return self._control(path[len(CONTROL_PREFIX) :], environ, start_response)
        if "HTTP_X_AMZ_TARGET" not in environ:
            return self.app(environ, start_response)
        body = _read_body(environ)
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        verdict = self.engine.judge_http(headers, body, f"http://{environ.get('HTTP_HOST', '')}{path}")
        if verdict.reset:
            _drop_connection(environ)
        if verdict.answer is not None:  # an operation moto lacks, answered by the engine
            return _respond(
                start_response, verdict.answer.status, verdict.answer.headers(), verdict.answer.body()
            )
        error = verdict.error
        if error is None:
            return self.app(environ, start_response)
        if verdict.after_effect:
            _apply_and_discard(self.app, environ)
        return _respond(start_response, error.status, error.headers(), error.body())

    def _control(self, action: str, environ: Environ, start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        if action == "stats" and method == "GET":
            payload: dict[str, Any] = self.engine.stats()
        elif action == "reset" and method == "POST":
            self.engine.reset()
            payload = {"reset": True}
        else:
            return _respond(start_response, 400, {}, b'{"message": "unknown control action"}')
        return _respond(
            start_response, 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()
        )


def _drop_connection(environ: Environ) -> None:
    """Shut the client's socket, then end the request as a dropped connection (werkzeug's dev
    server treats a ConnectionError from the app as the client gone: no answer, no log)."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        raise RuntimeError("a reset needs werkzeug's server (no werkzeug.socket in the environ)")
    with contextlib.suppress(OSError):  # already gone
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("cognito_local: injected reset")


def _apply_and_discard(app: WsgiApp, environ: Environ) -> None:
    """Let moto apply the request; its answer is the one that gets lost."""

    def ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        return lambda _data: None

    answer = app(environ, ignore)
    try:
        for _ in answer:
            pass
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()


def _read_body(environ: Environ) -> bytes:
    """Read the request body and put it back so that moto can read it again."""
    from werkzeug.wsgi import get_input_stream

    body = get_input_stream(environ).read()
    environ["wsgi.input"] = BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    return body


def _respond(
    start_response: StartResponse, status: int, headers: Mapping[str, str], body: bytes
) -> list[bytes]:
    start_response(
        f"{status} {_REASONS.get(status, '')}".strip(),
        [*headers.items(), ("Content-Length", str(len(body)))],
    )
    return [body]


class LocalAws:
    """moto's server on 127.0.0.1 with strict Cognito; a context manager.

    `strict=False` keeps latency, statistics and faults but turns quotas and validation off.
    `faults` injects Cognito's 500s, resets and throttling storms (storms need quotas); `clock`
    times quotas and storms. `index` (default on) answers ListUsers / ListUsersInGroup pages
    from `listing`'s index while the server runs: moto's answers, in O(page) instead of O(pool).
    """

    def __init__(
        self,
        latency: float = 0.0,
        quotas: Mapping[str, float] | None = None,
        strict: bool = True,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        log_requests: bool = False,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        index: bool = True,
    ) -> None:
        self.index = index
        self._indexed = False
        self.engine = StrictEngine(
            latency=latency,
            quotas=quotas,
            enforce_quotas=strict,
            enforce_validation=strict,
            faults=faults,
            clock=clock,
        )
        self._host = host
        self._port = port
        self._log_requests = log_requests
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._signing_key: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalAws is not running")
        return f"http://{self._host}:{self._server.server_port}"

    def signing_key(self, region: str = "us-east-1") -> str:
        """The ARN of this local AWS's manifest-signing HMAC key, made on first use (keys.py)."""
        if self._signing_key is None:
            import boto3

            from .keys import create_signing_key

            kms = boto3.session.Session(
                aws_access_key_id="local", aws_secret_access_key="local", region_name=region
            ).client("kms", endpoint_url=self.endpoint_url)
            self._signing_key = create_signing_key(kms)
        return self._signing_key

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LocalAws:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        if self.index and not self._indexed:
            from . import listing

            listing.install()
            self._indexed = True
        app = StrictMiddleware(DomainDispatcherApplication(create_backend_app), self.engine)
        handler = WSGIRequestHandler if self._log_requests else QuietHandler
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=handler)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="cognito-local-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        if self._indexed:
            from . import listing

            listing.uninstall()
            self._indexed = False

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _quota(text: str) -> tuple[str, float]:
    category, _, rps = text.partition("=")
    try:
        return category, float(rps)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected CATEGORY=RPS, got {text!r}") from error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cognito_local.server", description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each Cognito call")
    parser.add_argument("--quota", type=_quota, action="append", default=[], metavar="CATEGORY=RPS")
    parser.add_argument("--lenient", action="store_true", help="no quotas, no validation (plain moto)")
    parser.add_argument(
        "--no-index", action="store_true", help="list users with moto's own O(pool) pages (no index)"
    )
    faults = parser.add_argument_group("faults", "what real Cognito does now and then (default: nothing)")
    faults.add_argument("--fault-rate", type=float, default=0.0, help="share of calls answered 500")
    faults.add_argument(
        "--after-effect", type=float, default=0.5, help="share of those 500s sent after moto applied the call"
    )
    faults.add_argument("--reset-rate", type=float, default=0.0, help="share of connections dropped")
    faults.add_argument("--storm-every", type=float, default=0.0, help="seconds between throttling storms")
    faults.add_argument("--storm-seconds", type=float, default=0.0, help="how long a storm lasts")
    faults.add_argument("--storm-fraction", type=float, default=0.1, help="quota multiplier in a storm")
    faults.add_argument("--fault-seed", type=int, default=0)
    faults.add_argument(
        "--fault-operation",
        action="append",
        default=None,
        metavar="OPERATION",
        help="only these (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        chosen = Faults(
            rate=args.fault_rate,
            after_effect=args.after_effect,
            reset_rate=args.reset_rate,
            storm_every=args.storm_every,
            storm_seconds=args.storm_seconds,
            storm_fraction=args.storm_fraction,
            seed=args.fault_seed,
            operations=frozenset(args.fault_operation) if args.fault_operation else None,
        )
    except ValueError as error:
        parser.error(str(error))
    local = LocalAws(
        latency=args.latency,
        quotas=dict(args.quota),
        strict=not args.lenient,
        port=args.port,
        host=args.host,
        log_requests=True,
        faults=chosen,
        index=not args.no_index,
    )
    with local:
        key = local.signing_key()  # before the ready line: Ctrl-C after it must find us waiting
        print(f"strict local AWS on {local.endpoint_url} (Ctrl-C to stop)", flush=True)
        print(f"signing key (COGNITO_BACKUP_SIGNING_KEY): {key}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
