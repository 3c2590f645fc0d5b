"""Strict Cognito over HTTP: moto's server (every service) behind a WSGI middleware.

`python -m cognito_local.server --port 5000` serves until interrupted. Besides AWS, the
middleware answers `GET /_cognito_local/stats` and `POST /_cognito_local/reset`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from io import BytesIO
from types import TracebackType
from typing import Any

from cognito_local.strict import StrictEngine

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_REASONS = {200: "OK", 400: "Bad Request"}
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
        error = self.engine.admit_http(headers, body, f"http://{environ.get('HTTP_HOST', '')}{path}")
        if error is None:
            return self.app(environ, start_response)
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

    `strict=False` keeps latency and statistics but turns quotas and validation off.
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
    ) -> None:
        self.engine = StrictEngine(
            latency=latency, quotas=quotas, enforce_quotas=strict, enforce_validation=strict
        )
        self._host = host
        self._port = port
        self._log_requests = log_requests
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalAws is not running")
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LocalAws:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

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
    args = parser.parse_args(argv)
    local = LocalAws(
        latency=args.latency,
        quotas=dict(args.quota),
        strict=not args.lenient,
        port=args.port,
        host=args.host,
        log_requests=True,
    )
    with local:
        print(f"strict local AWS on {local.endpoint_url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
