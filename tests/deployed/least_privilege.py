"""The check: every recorded call allowed by the function's own role; every grant exercised.

`check_role` maps each recorded call to what IAM authorises (iam_calls), evaluates it
against the role's policies resolved from template.yaml (cfn_roles), plus the backup
bucket's policy for S3 requests on that bucket (its explicit Denies apply to the role too),
and lists (a) every denied authorisation and (b) every grant, (statement Sid, action), that no
authorisation used, unless the role's `Metadata.UnexercisedGrants` says why it stays:

    Metadata:
      UnexercisedGrants:
        <Sid>:
          <action>: <why it stays although no scenario here makes that call>

A reason for a grant that the scenarios do use, or that the role does not hold, is stale and
reported too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from call_recorder import RecordedCall
from cfn_roles import Resolver
from iam_calls import Authorization, AwsFacts, authorizations
from iam_policy import Policy, evaluate, statement_applies, wildcard_match

BUCKET_POLICY = "BackupBucketPolicy"


@dataclass(frozen=True)
class Grant:
    policy: str
    sid: str
    action: str
    resources: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.sid}: {self.action} on {', '.join(self.resources)} ({self.policy})"


@dataclass
class RoleReport:
    function: str
    role: str
    variant: str
    denied: list[str] = field(default_factory=list)
    unexercised: list[Grant] = field(default_factory=list)
    exercised: set[tuple[str, str]] = field(default_factory=set)  # (sid, action)
    authorizations: int = 0


def grants(policies: Sequence[Policy]) -> list[Grant]:
    out: list[Grant] = []
    for policy in policies:
        for s in policy.statements():
            if s["Effect"] != "Allow":
                continue
            if not s.get("Sid"):
                raise AssertionError(f"{policy.name}: every statement of a function's role needs a Sid")
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            out += [Grant(policy.name, s["Sid"], a, tuple(resources)) for a in actions]
    return out


def _bucket_of(auth: Authorization) -> str | None:
    resource = auth.request.resource
    if not resource.startswith("arn:aws:s3:::"):
        return None
    return resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]


def check_role(
    function: str,
    variant: str,
    resolver: Resolver,
    calls: Iterable[tuple[str, RecordedCall]],
    facts: AwsFacts,
    bucket: str,
) -> RoleReport:
    role = resolver.function_role(function)
    policies = resolver.role_policies(role)
    bucket_policy = [resolver.resource_policy(BUCKET_POLICY)]
    report = RoleReport(function, role, variant)
    for scenario, call in calls:
        for auth in authorizations(call, facts):
            report.authorizations += 1
            resource_policies = bucket_policy if _bucket_of(auth) == bucket else []
            decision = evaluate(policies, auth.request, resource_policies)
            if not decision.allowed:
                report.denied.append(f"[{scenario}] {decision.decision}: {auth.describe()}")
                continue
            for policy in policies:
                for s in policy.statements():
                    if s["Effect"] == "Allow" and statement_applies(s, auth.request):
                        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                        for action in actions:
                            if wildcard_match(action, auth.request.action, ignore_case=True):
                                report.exercised.add((s["Sid"], action))
    report.unexercised = [g for g in grants(policies) if (g.sid, g.action) not in report.exercised]
    return report


def documented_unexercised(template: dict[str, Any], role: str) -> dict[tuple[str, str], str]:
    """The role's Metadata.UnexercisedGrants as {(sid, action): reason}."""
    raw = template["Resources"][role].get("Metadata", {}).get("UnexercisedGrants", {})
    out: dict[tuple[str, str], str] = {}
    for sid, actions in raw.items():
        if not isinstance(actions, dict):
            raise AssertionError(f"{role}: Metadata.UnexercisedGrants.{sid} must map actions to reasons")
        for action, reason in actions.items():
            if not isinstance(reason, str) or len(reason.split()) < 4:
                raise AssertionError(f"{role}: say why {sid}/{action} stays, in a sentence")
            out[(sid, action)] = reason
    return out


def problems(reports: Sequence[RoleReport], template: dict[str, Any]) -> list[str]:
    """Everything wrong, over every parameter variant of one function's role."""
    out: list[str] = []
    if not reports:
        return out
    variants: dict[str, list[str]] = {}
    for r in reports:
        for denial in dict.fromkeys(r.denied):
            variants.setdefault(denial, []).append(r.variant)
    for denial, where in variants.items():
        which = "every parameter variant" if len(where) == len(reports) else ", ".join(where)
        out.append(f"{reports[0].function} ({reports[0].role}; {which}) DENIED {denial}")
    role = reports[0].role
    documented = documented_unexercised(template, role)
    unexercised: dict[tuple[str, str], Grant] = {}
    for r in reports:
        for g in r.unexercised:
            unexercised.setdefault((g.sid, g.action), g)
    for key, grant in sorted(unexercised.items()):
        if key not in documented:
            out.append(
                f"{reports[0].function} ({role}): grant never exercised and not explained in "
                f"Metadata.UnexercisedGrants: {grant}"
            )
    held = {key for r in reports for key in grants_of(r)}
    for key in sorted(documented):
        if key not in unexercised:
            why = "is exercised" if key in held else "is not a grant of this role"
            out.append(f"{role}: Metadata.UnexercisedGrants {key[0]}/{key[1]} {why}: remove the entry")
    return out


def grants_of(report: RoleReport) -> set[tuple[str, str]]:
    return report.exercised | {(g.sid, g.action) for g in report.unexercised}
