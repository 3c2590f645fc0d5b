"""template.yaml's IAM roles as concrete policy JSON, for one set of parameters.

cfn_flip reads the short tags (!Ref, !Sub, !GetAtt A.B, !If, !Join, !Split, !Select, !Equals,
!Not ...) into their long form; `Resolver` then evaluates the intrinsic functions the way
CloudFormation does, with the physical ids and attributes a test supplies (the moto bucket's
name and ARN, the moto KMS key's ARN) and deterministic stand-ins for everything else. A
function or reference it does not know raises: an unresolved policy proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfn_flip import load_yaml
from iam_policy import Policy

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
NO_VALUE = object()  # AWS::NoValue: the property is removed


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    loaded: dict[str, Any] = plain(load_yaml(path.read_text(encoding="utf-8")))
    return loaded


class UnresolvableError(ValueError):
    pass


@dataclass
class Stack:
    """What a deployment would make of the template's references."""

    region: str = "us-east-1"
    account: str = "123456789012"
    stack_name: str = "cognito-backup"
    parameters: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> physical id (Ref)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)  # (logical id, attr) -> value


class Resolver:
    def __init__(self, template: dict[str, Any], stack: Stack) -> None:
        self.template = template
        self.stack = stack
        self.resources: dict[str, Any] = template["Resources"]
        self.params = self._parameters()
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------------ inputs
    def _parameters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in self.template.get("Parameters", {}).items():
            if name in self.stack.parameters:
                value = self.stack.parameters[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise UnresolvableError(f"parameter {name} has no default: give it a value")
            if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
                value = value.split(",")
            elif spec["Type"] == "Number":
                value = str(value)
            out[name] = value
        unknown = set(self.stack.parameters) - set(out)
        if unknown:
            raise UnresolvableError(f"no such parameter(s): {sorted(unknown)}")
        return out

    def _pseudo(self, name: str) -> Any:
        s = self.stack
        values: dict[str, Any] = {
            "AWS::Region": s.region,
            "AWS::AccountId": s.account,
            "AWS::Partition": "aws",
            "AWS::StackName": s.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{s.region}:{s.account}:stack/{s.stack_name}/id",
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise UnresolvableError(f"unknown pseudo parameter {name}")
        return values[name]

    def _ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name in self.params:
            return self.params[name]
        if name in self.stack.refs:
            return self.stack.refs[name]
        resource = self._resource(name)
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            return f"arn:aws:iam::{self.stack.account}:policy/{self.stack.stack_name}-{name}"
        return f"{self.stack.stack_name}-{name}"

    def _resource(self, name: str) -> dict[str, Any]:
        if name not in self.resources:
            raise UnresolvableError(f"no resource {name}")
        resource: dict[str, Any] = self.resources[name]
        condition = resource.get("Condition")
        if condition and not self.condition(condition):
            raise UnresolvableError(f"resource {name} does not exist under condition {condition}")
        return resource

    def _get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.stack.attributes:
            return self.stack.attributes[(name, attribute)]
        resource = self._resource(name)
        s, kind = self.stack, resource["Type"]
        physical = str(self._ref(name))
        if attribute == "Arn":
            if kind == "AWS::Logs::LogGroup":
                group = self.resolve(resource["Properties"]["LogGroupName"])
                return f"arn:aws:logs:{s.region}:{s.account}:log-group:{group}:*"
            if kind == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{s.region}:{s.account}:{physical}"
            if kind == "AWS::KMS::Key":
                return f"arn:aws:kms:{s.region}:{s.account}:key/{physical}"
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{physical}"
            if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                return f"arn:aws:lambda:{s.region}:{s.account}:function:{physical}"
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{s.account}:role/{physical}"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return physical
        raise UnresolvableError(f"GetAtt {name}.{attribute} ({kind}) is not known here: give it a value")

    # ------------------------------------------------------------------ conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            value = self.resolve(self.template["Conditions"][name])
            if not isinstance(value, bool):
                raise UnresolvableError(f"condition {name} is not a boolean: {value!r}")
            self._conditions[name] = value
        return self._conditions[name]

    # ------------------------------------------------------------------ intrinsic functions
    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, raw_vars = arg
            variables = {k: self.resolve(v) for k, v in raw_vars.items()}

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                name, attribute = inner.split(".", 1)
                return str(self._get_att(name, attribute))
            value = self._ref(inner)
            if isinstance(value, list):
                raise UnresolvableError(f"Sub of the list {inner}")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic function
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self._ref(arg)
            if fn == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(name, attribute)
            if fn == "Fn::Sub":
                return self._sub(arg)
            if fn == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if fn == "Fn::Join":
                delimiter, items = arg
                return delimiter.join(str(v) for v in self.resolve(items))
            if fn == "Fn::Split":
                delimiter, text = arg
                return str(self.resolve(text)).split(delimiter)
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if fn == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                (inner,) = arg
                return not self.resolve(inner)
            if fn == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if fn == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn.startswith("Fn::"):
                raise UnresolvableError(f"intrinsic function {fn} is not supported here")
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    # ------------------------------------------------------------------ roles
    def role_policies(self, role: str) -> list[Policy]:
        """The role's inline policies and its managed policies from this template, resolved."""
        resource = self._resource(role)
        if resource["Type"] != "AWS::IAM::Role":
            raise UnresolvableError(f"{role} is a {resource['Type']}, not an AWS::IAM::Role")
        props = resource["Properties"]
        policies = [
            Policy(f"{role}/{p['PolicyName']}", self.resolve(p["PolicyDocument"]))
            for p in props.get("Policies", [])
        ]
        managed_by_arn = {
            self._ref(name): name
            for name, r in self.resources.items()
            if r["Type"] == "AWS::IAM::ManagedPolicy"
        }
        for arn in self.resolve(props.get("ManagedPolicyArns", [])):
            if arn not in managed_by_arn:
                raise UnresolvableError(f"{role}: managed policy {arn} is not defined in the template")
            name = managed_by_arn[arn]
            policies.append(Policy(name, self.resolve(self.resources[name]["Properties"]["PolicyDocument"])))
        return policies

    def function_role(self, function: str) -> str:
        role = self.resources[function]["Properties"]["Role"]
        name, attribute = role["Fn::GetAtt"]
        assert attribute == "Arn", role
        return str(name)

    def resource_policy(self, policy_resource: str) -> Policy:
        props = self._resource(policy_resource)["Properties"]
        return Policy(policy_resource, self.resolve(props["PolicyDocument"]))

    def function_environment(self, function: str) -> dict[str, str]:
        """The function's environment variables: the Globals' merged with its own."""
        glob = (
            self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        own = self.resources[function]["Properties"].get("Environment", {}).get("Variables", {})
        return {k: str(v) for k, v in self.resolve({**glob, **own}).items()}
