"""The restore tests' world: a strict local Cognito, a bucket, a source pool exported, targets.

Shared by the test_restore* modules (they imported these from test_restore.py before)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.backends import get_backend

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.pacing import CountdownDeadline, Pacer
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_local.inprocess import strict_cognito
from cognito_local.seed import create_pool, pool_state, seed_pool
from cognito_local.strict import StrictEngine

WRITES = frozenset(
    {
        "add_custom_attributes",
        "create_group",
        "admin_create_user",
        "admin_set_user_password",
        "admin_disable_user",
        "admin_add_user_to_group",
    }
)

ALL_CUSTOM = (("tenant", "String", True), ("employee_id", "String", False), ("level", "Number", True))


@dataclass
class World:
    aws: AwsClients
    cognito: Any
    store: SnapshotStore
    gateway: CognitoGateway
    engine: StrictEngine


class LockedClient:
    """The Cognito client, one call at a time. moto's in-process backend is not thread-safe
    where Cognito is: in an email-as-username pool it finds a user by iterating the pool's
    users while another thread may be adding one ("OrderedDict mutated during iteration")."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def locked(**kwargs: Any) -> Any:
            with self._lock:
                return attr(**kwargs)

        return locked


def unpaced(client: Any, **kwargs: Any) -> CognitoGateway:
    """A gateway without pacing, one moto call at a time (see LockedClient)."""
    return CognitoGateway(LockedClient(client), Pacer(quotas={}), **{"base_delay": 0.0, **kwargs})


def make_world(
    aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway, **strict: Any
) -> Iterator[World]:
    with strict_cognito(clients=[aws.cognito()], **strict) as engine:
        yield World(aws, aws.cognito(), store, gateway, engine)


def snapshot(
    w: World,
    *,
    username_attributes: tuple[str, ...] | None = None,
    users: int = 30,
    groups: int = 3,
    extra: Any = None,
) -> tuple[str, str]:
    """A seeded source pool (some users CONFIRMED, one RESET_REQUIRED) and its full snapshot."""
    c = w.cognito
    source = create_pool(c, "source", username_attributes=username_attributes)
    seed_pool(c, source, users=users, groups=groups)
    reset_done = False
    for i, user in enumerate(sorted(w.gateway.iter_users(source), key=lambda u: u.username)):
        if i % 3 == 0:
            c.admin_set_user_password(
                UserPoolId=source, Username=user.username, Password="Sup3r-secret!", Permanent=True
            )
            verified = user.attributes.get("email_verified") == "true"
            if not reset_done and user.enabled and verified:
                c.admin_reset_user_password(UserPoolId=source, Username=user.username)
                reset_done = True
    if extra is not None:
        extra(source)
    result = run_export(w.gateway, w.store, source)
    assert result.manifest_key is not None
    return source, result.manifest_key


def target(
    w: World,
    *,
    username_attributes: tuple[str, ...] | None = None,
    custom: Any = (("employee_id", "String", False),),
) -> str:
    """A fresh pool with the source's username settings and some of its custom attributes."""
    return create_pool(w.cognito, "target", username_attributes=username_attributes, custom_attributes=custom)


def expected(state: dict[str, Any]) -> dict[str, Any]:
    """The source's state as the default strategy restores it (RESET_REQUIRED -> CONFIRMED)."""
    users = {
        k: {**u, "status": "CONFIRMED" if u["status"] == "RESET_REQUIRED" else u["status"]}
        for k, u in state["users"].items()
    }
    return {**state, "users": users}


def restore_until_done(w: World, key: str, dst: str, options: RestoreOptions, checks: int) -> list[Any]:
    reports = []
    for _ in range(60):
        report = run_restore(
            w.gateway, w.store, key, dst, options=options, deadline=CountdownDeadline(checks)
        )
        reports.append(report)
        if report.status != "incomplete":
            return reports
    raise AssertionError("the restore never finished")


class CrashingGateway(CognitoGateway):
    """Dies (as a process would) at the n-th write to Cognito, and at every write after it."""

    def __init__(self, client: Any, writes_before_crash: int) -> None:
        super().__init__(LockedClient(client), Pacer(quotas={}), base_delay=0.0)
        self._left = writes_before_crash
        self._lock = threading.Lock()

    def call(self, operation: str, **kwargs: Any) -> Any:
        if operation in WRITES:
            with self._lock:
                self._left -= 1
                if self._left < 0:
                    raise RuntimeError("injected crash")
        return super().call(operation, **kwargs)


def moto_user(pool_id: str, username: str) -> Any:
    return get_backend("cognito-idp")["123456789012"]["us-east-1"].user_pools[pool_id].users[username]


def everything(w: World, pool_ids: list[str]) -> dict[str, Any]:
    """All that a restore could write: the pools (users, groups, memberships, schema) and
    every object version and tag in the bucket."""
    s3 = w.aws.s3()
    versions = s3.list_object_versions(Bucket=w.store.bucket)
    objects = sorted((v["Key"], v["VersionId"]) for v in versions.get("Versions", []))
    tags = {k: w.store.get_tags(k) for k, _ in objects}
    pools = {}
    for pool_id in pool_ids:
        schema = w.gateway.describe_pool(pool_id)["SchemaAttributes"]
        pools[pool_id] = (pool_state(w.cognito, pool_id), sorted(a["Name"] for a in schema))
    return {"objects": objects, "tags": tags, "pools": pools}
