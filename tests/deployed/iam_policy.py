"""A small, strict IAM policy evaluator for tests: what AWS would decide for one request.

moto evaluates no IAM policy, and moto.iam's IAMPolicy is too weak to stand in for AWS (it
knows only StringEquals and treats a missing condition key as a match, so it would allow a
HeadBucket that AWS denies). This one follows the AWS documentation:

- Evaluation logic (explicit Deny wins, then any Allow, else the implicit deny):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- Action / NotAction, Resource / NotResource, wildcards `*` and `?`, actions case-insensitive:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- Condition operators, `...IfExists`, `Null`, and what a key missing from the request means
  ("If the key that you specify in a policy condition is not present in the request context,
  the values do not match and the condition is false. If the policy condition requires that
  the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not
  present, the condition is true."):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- AND across operators and keys, OR across the values of one key:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
- `ForAnyValue:` / `ForAllValues:` on multivalued keys (ForAllValues is true for a missing or
  empty key, ForAnyValue false):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html

Anything it does not know (an operator, an element) raises: a policy it cannot read must
never be taken for one that allows.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

ContextValue = str | bool | int | float | Sequence[str]
Effect = Literal["Allow", "Deny"]

STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Principal",
        "NotPrincipal",
    }
)


class PolicyError(ValueError):
    """A policy this evaluator cannot read (unknown operator, element, malformed value)."""


@dataclass(frozen=True)
class Request:
    """One authorisation request: a principal asks for `action` on `resource`."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    principal: str | None = None  # the caller's ARN, for resource-based policies


@dataclass(frozen=True)
class Match:
    policy: str
    sid: str | None
    effect: Effect


@dataclass(frozen=True)
class Decision:
    decision: Literal["allowed", "explicit-deny", "implicit-deny"]
    matches: tuple[Match, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


@dataclass(frozen=True)
class Policy:
    name: str
    document: Mapping[str, Any]

    def statements(self) -> list[Mapping[str, Any]]:
        raw = self.document.get("Statement", [])
        statements = raw if isinstance(raw, list) else [raw]
        for s in statements:
            unknown = set(s) - STATEMENT_KEYS
            if unknown:
                raise PolicyError(f"{self.name}: unknown statement element(s) {sorted(unknown)}")
            if s.get("Effect") not in ("Allow", "Deny"):
                raise PolicyError(f"{self.name}: Effect must be Allow or Deny, not {s.get('Effect')!r}")
        return statements


# ---------------------------------------------------------------------- wildcards
@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """`*` matches any run of characters (also none), `?` exactly one."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def arn_match(pattern: str, value: str) -> bool:
    """ArnLike / ArnEquals: each of the six colon-separated parts matched on its own."""
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(wildcard_match(p, v) for p, v in zip(p_parts, v_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _policy_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyError(f"a condition value must be a string, number or boolean, not {value!r}")


# ---------------------------------------------------------------------- condition operators
def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(parse: Callable[[str], Any], test: Callable[[Any, Any], bool]) -> Callable[[str, str], bool]:
    def compare(ctx: str, pol: str) -> bool:
        a, b = parse(ctx), parse(pol)
        return a is not None and b is not None and bool(test(a, b))

    return compare


def _ip_match(ctx: str, pol: str) -> bool:
    try:
        return ipaddress.ip_address(ctx) in ipaddress.ip_network(pol, strict=False)
    except ValueError:
        return False


def _binary_equals(ctx: str, pol: str) -> bool:
    try:
        return base64.b64decode(ctx, validate=True) == base64.b64decode(pol, validate=True)
    except ValueError:
        return False


def _arn_like(ctx: str, pol: str) -> bool:
    return arn_match(pol, ctx)


# name -> (value comparison, negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda c, p: c == p, False),
    "StringNotEquals": (lambda c, p: c == p, True),
    "StringEqualsIgnoreCase": (lambda c, p: c.lower() == p.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda c, p: c.lower() == p.lower(), True),
    "StringLike": (lambda c, p: wildcard_match(p, c), False),
    "StringNotLike": (lambda c, p: wildcard_match(p, c), True),
    "NumericEquals": (_compare(_number, lambda a, b: a == b), False),
    "NumericNotEquals": (_compare(_number, lambda a, b: a == b), True),
    "NumericLessThan": (_compare(_number, lambda a, b: a < b), False),
    "NumericLessThanEquals": (_compare(_number, lambda a, b: a <= b), False),
    "NumericGreaterThan": (_compare(_number, lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_compare(_number, lambda a, b: a >= b), False),
    "DateEquals": (_compare(_date, lambda a, b: a == b), False),
    "DateNotEquals": (_compare(_date, lambda a, b: a == b), True),
    "DateLessThan": (_compare(_date, lambda a, b: a < b), False),
    "DateLessThanEquals": (_compare(_date, lambda a, b: a <= b), False),
    "DateGreaterThan": (_compare(_date, lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_compare(_date, lambda a, b: a >= b), False),
    "Bool": (lambda c, p: c.lower() == p.lower(), False),
    "BinaryEquals": (_binary_equals, False),
    "IpAddress": (_ip_match, False),
    "NotIpAddress": (_ip_match, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
}


def _context_values(context: Mapping[str, ContextValue], key: str) -> list[str] | None:
    """The request's values of `key` (keys are case-insensitive), or None when absent."""
    wanted = key.lower()
    for name, value in context.items():
        if name.lower() == wanted:
            if isinstance(value, list | tuple):
                return [_policy_string(v) for v in value]
            return [_policy_string(value)]
    return None


def _null(values: list[str] | None, policy_values: list[str]) -> bool:
    """Null: "true" asks for the key to be absent (or an empty set), "false" for it to be there."""
    absent = values is None or values == []
    wanted = {v.lower() for v in policy_values}
    if not wanted <= {"true", "false"}:
        raise PolicyError(f"Null takes true or false, not {policy_values}")
    return ("true" in wanted and absent) or ("false" in wanted and not absent)


def _condition_true(operator: str, key: str, policy_values: list[str], context: Mapping[str, Any]) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise PolicyError(f"unknown condition qualifier {qualifier!r} in {operator!r}")
    values = _context_values(context, key)
    if name == "Null":
        if qualifier:
            raise PolicyError(f"{operator}: Null takes no set qualifier")
        return _null(values, policy_values)

    if_exists = name.endswith("IfExists")
    base = name.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise PolicyError(f"unknown condition operator {operator!r}")
    compare, negated = _OPERATORS[base]

    def one(value: str) -> bool:
        hit = any(compare(value, p) for p in policy_values)
        return not hit if negated else hit

    if values is None or values == []:
        if if_exists:
            return True
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated  # a positive operator is false, a negated one true
    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    # A single-valued use: the operator over the request's value (any of them, if several).
    hit = any(any(compare(v, p) for p in policy_values) for v in values)
    return not hit if negated else hit


def conditions_true(condition: Mapping[str, Any] | None, context: Mapping[str, ContextValue]) -> bool:
    """AND across operators and keys; OR across the values of one key."""
    if not condition:
        return True
    for operator, block in condition.items():
        if not isinstance(block, Mapping):
            raise PolicyError(f"condition {operator!r} must map keys to values")
        for key, raw in block.items():
            policy_values = [_policy_string(v) for v in _as_list(raw)]
            if not _condition_true(operator, key, policy_values, context):
                return False
    return True


# ---------------------------------------------------------------------- statements
def _matches_any(patterns: Iterable[str], value: str, *, ignore_case: bool) -> bool:
    return any(wildcard_match(p, value, ignore_case=ignore_case) for p in patterns)


def _action_applies(s: Mapping[str, Any], action: str) -> bool:
    if ("Action" in s) == ("NotAction" in s):
        raise PolicyError("a statement has exactly one of Action and NotAction")
    if "Action" in s:
        return _matches_any(_as_list(s["Action"]), action, ignore_case=True)
    return not _matches_any(_as_list(s["NotAction"]), action, ignore_case=True)


def _resource_applies(s: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in s and "NotResource" in s:
        raise PolicyError("a statement has at most one of Resource and NotResource")
    if "NotResource" in s:
        return not _matches_any(_as_list(s["NotResource"]), resource, ignore_case=False)
    if "Resource" not in s:
        raise PolicyError("an identity-based statement needs Resource or NotResource")
    return _matches_any(_as_list(s["Resource"]), resource, ignore_case=False)


def _principal_applies(s: Mapping[str, Any], principal: str | None) -> bool:
    if ("Principal" in s) == ("NotPrincipal" in s):
        raise PolicyError("a resource-based statement has exactly one of Principal and NotPrincipal")
    spec = s.get("Principal", s.get("NotPrincipal"))
    if spec == "*":
        hit = True
    elif isinstance(spec, Mapping):
        names = {str(n) for kind in ("AWS", "Service", "Federated") for n in _as_list(spec.get(kind, []))}
        # An account id, or its root ARN, names every principal of that account.
        account = principal.split(":")[4] if principal and principal.count(":") >= 5 else None
        accepted = {"*", principal} | ({account, f"arn:aws:iam::{account}:root"} if account else set())
        hit = principal is not None and bool(names & accepted)
    else:
        raise PolicyError(f"unreadable Principal {spec!r}")
    return hit if "Principal" in s else not hit


def statement_applies(s: Mapping[str, Any], request: Request, *, resource_based: bool = False) -> bool:
    if resource_based and not _principal_applies(s, request.principal):
        return False
    if not resource_based and ("Principal" in s or "NotPrincipal" in s):
        raise PolicyError("an identity-based statement names no Principal")
    return (
        _action_applies(s, request.action)
        and _resource_applies(s, request.resource)
        and conditions_true(s.get("Condition"), request.context)
    )


def evaluate(
    identity_policies: Sequence[Policy], request: Request, resource_policies: Sequence[Policy] = ()
) -> Decision:
    """AWS's decision for one same-account request.

    Explicit Deny in any policy wins; otherwise an Allow in an identity-based policy or in a
    resource-based policy (same account: either suffices) allows; otherwise implicit deny.
    """
    matches: list[Match] = []
    for policies, resource_based in ((identity_policies, False), (resource_policies, True)):
        for policy in policies:
            for s in policy.statements():
                if statement_applies(s, request, resource_based=resource_based):
                    matches.append(Match(policy.name, s.get("Sid"), s["Effect"]))
    if any(m.effect == "Deny" for m in matches):
        return Decision("explicit-deny", tuple(m for m in matches if m.effect == "Deny"))
    if matches:
        return Decision("allowed", tuple(matches))
    return Decision("implicit-deny")
