"""The state machines of template.yaml, run by moto's ASL interpreter, with the real handlers.

A state machine is created in moto from its Definition in template.yaml itself (only the
DefinitionSubstitutions are filled in, with the ARN of a function created in moto's Lambda).
moto's Lambda has no runtime here (`use_docker: False`): `LambdaBridge` makes its invoke call
the function's real `functions/<name>/app.py` handler in this process, against the same moto,
and answers as the Lambda Python runtime does: the JSON of the return value, or, when the
handler raises, an `X-Amz-Function-Error` answer whose errorType is the exception's class name.
Answers queued in moto's own simple-Lambda queue (recorded answers of a real handler) go first.
"""

from __future__ import annotations

import functools
import io
import json
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from conftest import FakeLambdaContext, load_handler, load_template
from moto.awslambda_simple.models import LambdaSimpleBackend, lambda_simple_backends
from moto.core.exceptions import JsonRESTError
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

ACCOUNT = "123456789012"
REGION = "us-east-1"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
MACHINES = ("FullExportStateMachine", "IncrementalExportStateMachine", "RestoreStateMachine")
FULL_MINUTES_MS = 900_000  # what Lambda gives a step with the template's Timeout: 900

Handler = Callable[[dict[str, Any], Any], Any]


def speed_up_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """For speed only, no change of behaviour: moto's interpreter parses every JSONPath and builds
    a new Lambda client at every step, which makes a 700-step execution take half a minute."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import json_path

    monkeypatch.setattr(json_path, "parse", functools.lru_cache(maxsize=None)(json_path.parse))
    monkeypatch.setattr(result_path, "parse", functools.lru_cache(maxsize=None)(result_path.parse))
    client_for = functools.lru_cache(maxsize=None)(lambda_eval_utils.boto_client_for)
    monkeypatch.setattr(
        lambda_eval_utils,
        "boto_client_for",
        lambda region, service, state_credentials=None: client_for(region, service),
    )


def record_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The Retry intervals the interpreter waits, recorded instead of slept (the definition's
    IntervalSeconds stay as written; only the interpreter's clock is not waited on)."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


class LambdaServiceError(JsonRESTError):
    """An error of the Lambda service itself (not of the function): the task sees Lambda.<code>."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code, f"simulated {code}")
        self.code = status


def throttled() -> LambdaServiceError:
    return LambdaServiceError("TooManyRequestsException", 429)


def service_exception() -> LambdaServiceError:
    return LambdaServiceError("ServiceException", 500)


@dataclass
class Invocation:
    function: str
    event: dict[str, Any]
    remaining_ms: int
    answer: bytes
    error_type: str | None = None

    @property
    def result(self) -> Any:
        return json.loads(self.answer)


@dataclass
class LambdaBridge:
    """moto's Lambda invoke, answered by the real handlers in this process."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    # Remaining time of each step's context, in order; then FULL_MINUTES_MS.
    remaining_ms: list[int] = field(default_factory=list)
    # What the next invocations do instead of running the handler, in order: a LambdaServiceError
    # is an error of the Lambda service, any other exception a crash of the function, None runs
    # the handler.
    faults: list[Exception | None] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = LambdaSimpleBackend.invoke

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes | str | None:
            name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
            fault = self.faults.pop(0) if self.faults else None
            if isinstance(fault, LambdaServiceError):
                raise fault
            if backend.lambda_simple_results_queue:  # a recorded answer
                answer = original(backend, function_name, qualifier, body, headers, response_headers)
                assert isinstance(answer, bytes)
                self.invocations.append(Invocation(name, json.loads(body), 0, answer))
                return answer
            return self._run(name, json.loads(body), response_headers, fault)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

    def _run(
        self, name: str, event: dict[str, Any], response_headers: dict[str, str], fault: Exception | None
    ) -> bytes:
        remaining = self.remaining_ms.pop(0) if self.remaining_ms else FULL_MINUTES_MS
        context = FakeLambdaContext(
            function_name=name,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            remaining_ms=remaining,
        )
        error_type = None
        try:
            if fault is not None:
                raise fault
            answer = json.dumps(self.handlers[name](event, context)).encode()
        except Exception as exc:  # what the Lambda Python runtime does with an unhandled error
            error_type = type(exc).__name__
            response_headers["x-amz-function-error"] = "Unhandled"
            answer = json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": error_type,
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode()
        self.invocations.append(Invocation(name, event, remaining, answer, error_type))
        return answer

    @staticmethod
    def queue(*answers: Any) -> None:
        """Recorded answers, through moto's own queue: the next invocations return them."""
        backend = lambda_simple_backends[ACCOUNT][REGION]
        backend.lambda_simple_results_queue.extend(json.dumps(a) for a in answers)


@dataclass
class Execution:
    status: str
    output: Any
    error: str | None
    cause: str | None
    events: list[dict[str, Any]]

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] in types]

    @property
    def attempts(self) -> int:
        """Lambda invocations the execution scheduled (first tries and retries)."""
        return len(self.of_type("TaskScheduled"))

    def answers(self) -> list[str]:
        """Each successful task's Lambda answer (the Payload), as the JSON text Step Functions holds."""
        return [
            json.dumps(json.loads(e["taskSucceededEventDetails"]["output"])["Payload"], separators=(",", ":"))
            for e in self.of_type("TaskSucceeded")
        ]

    def state_data(self) -> list[str]:
        """Every input and output passed between states."""
        found = []
        for e in self.events:
            for details in ("stateEnteredEventDetails", "stateExitedEventDetails"):
                if details in e:
                    found.append(e[details].get("input", e[details].get("output", "")))
        return found


class StateMachines:
    """The template's state machines, deployed in moto over functions answered by the bridge."""

    def __init__(self, bridge: LambdaBridge) -> None:
        self.bridge = bridge
        self.resources: dict[str, Any] = load_template()["Resources"]
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.lam = boto3.client("lambda", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        trust = {"Version": "2012-10-17", "Statement": []}
        self.role_arn = iam.create_role(RoleName="sfn-tests", AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
        self.arns: dict[str, str] = {}
        self.modules: dict[str, ModuleType] = {}

    def definition(self, machine: str) -> dict[str, Any]:
        definition: dict[str, Any] = self.resources[machine]["Properties"]["Definition"]
        return definition

    def _function(self, logical_id: str) -> str:
        """Create the template's function in moto's Lambda; the bridge runs its real handler."""
        props = self.resources[logical_id]["Properties"]
        code_dir = props["CodeUri"].strip("/").split("/")[-1]  # functions/<name>/
        module = load_handler(code_dir)
        self.bridge.handlers[logical_id] = module.handler
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "")  # moto's Lambda never runs it: the bridge answers
        return str(
            self.lam.create_function(
                FunctionName=logical_id,
                Runtime="python3.13",
                Role=self.role_arn,
                Handler=props.get("Handler", "app.handler"),
                Code={"ZipFile": code.getvalue()},
                Timeout=int(props.get("Timeout", 3)),
            )["FunctionArn"]
        )

    def deploy(self, machine: str) -> str:
        if machine in self.arns:
            return self.arns[machine]
        props = self.resources[machine]["Properties"]
        text = json.dumps(props["Definition"])
        for name, value in props["DefinitionSubstitutions"].items():
            logical_id = value["Fn::GetAtt"][0]
            assert value["Fn::GetAtt"][1] == "Arn", value
            text = text.replace("${" + name + "}", self._function(logical_id))
        assert "${" not in text, "a DefinitionSubstitution left unresolved"
        self.arns[machine] = self.sfn.create_state_machine(
            name=machine, definition=text, roleArn=self.role_arn, type=props.get("Type", "STANDARD")
        )["stateMachineArn"]
        return self.arns[machine]

    def run(self, machine: str, event: dict[str, Any], timeout: float = 300.0) -> Execution:
        arn = self.sfn.start_execution(stateMachineArn=self.deploy(machine), input=json.dumps(event))[
            "executionArn"
        ]
        # A generous bound only against a hang: no assertion depends on how long a run takes.
        give_up = time.monotonic() + timeout
        while (described := self.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < give_up, f"{machine} still running after {timeout} s"
            time.sleep(0.02)
        events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        output = described.get("output")
        return Execution(
            status=described["status"],
            output=json.loads(output) if output is not None else None,
            error=described.get("error"),
            cause=described.get("cause"),
            events=list(events),
        )
