"""Restore: every refusal writes nothing; a dry run writes nothing; the Lambda handler."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import load_event
from restore_world import ALL_CUSTOM, World, everything, make_world, snapshot, target, unpaced

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import PoolNotFoundError, RestoreFailedError, RestoreRefusedError, UsageError
from cognito_backup.handlers import RestoreAnswer, restore_handler
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.settings import Settings
from cognito_backup.store import SnapshotStore
from cognito_local.seed import create_pool, pool_state

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def gateway(aws: AwsClients) -> CognitoGateway:
    return unpaced(aws.cognito())


@pytest.fixture
def world(aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway) -> Iterator[World]:
    yield from make_world(aws, store, gateway, enforce_quotas=False)


def set_verdict(w: World, key: str, verdict: str) -> None:
    w.store.put_tags(key, {"validation": verdict})


# ------------------------------------------------------------------ refusals


def _failed_verdict(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    set_verdict(w, key, "failed")
    return target(w), RestoreOptions()


def _invalid_never_validated(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    part = next(k for k in w.store.list_keys(key.rsplit("/", 1)[0]) if k.endswith(".jsonl.gz"))
    w.store.put_bytes(part, b"not gzip")
    w.aws.s3().delete_object_tagging(Bucket=w.store.bucket, Key=key)  # never validated
    return target(w), RestoreOptions()


def _same_pool(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    return source, RestoreOptions()


def _username_attributes(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    return target(w, username_attributes=("email",)), RestoreOptions()


def _alias_attributes(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    return w.cognito.create_user_pool(PoolName="t", AliasAttributes=["email"])["UserPool"][
        "Id"
    ], RestoreOptions()


def _case_sensitivity(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    pool = w.cognito.create_user_pool(PoolName="t", UsernameConfiguration={"CaseSensitive": False})
    return pool["UserPool"]["Id"], RestoreOptions()


def _attribute_type(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    return target(w, custom=(("level", "String", True),)), RestoreOptions()


def _attribute_mutability(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    return target(w, custom=(("tenant", "String", False),)), RestoreOptions()


def _too_many_attributes(w: World, key: str, source: str) -> tuple[str, RestoreOptions]:
    return target(w, custom=tuple((f"a{i}", "String", True) for i in range(48))), RestoreOptions()


REFUSALS: dict[str, tuple[Callable[[World, str, str], tuple[str, RestoreOptions]], str]] = {
    "same-pool": (_same_pool, "the snapshot's own pool"),
    "username-attributes": (_username_attributes, "UsernameAttributes is \\[\\] in the snapshot"),
    "alias-attributes": (_alias_attributes, "AliasAttributes"),
    "case-sensitivity": (_case_sensitivity, "CaseSensitive"),
    "attribute-type": (_attribute_type, "custom:level is a Number in the snapshot, a String"),
    "attribute-mutability": (_attribute_mutability, "custom:tenant is mutable in the snapshot, immutable"),
    "more-than-50-attributes": (_too_many_attributes, "more than Cognito's 50"),
    # these two change the snapshot's verdict: last
    "verdict-failed": (_failed_verdict, "failed validation"),
    "never-validated-and-invalid": (_invalid_never_validated, "never been validated and is invalid"),
}


def test_a_harmful_restore_is_refused_and_writes_nothing(world: World, subtests: pytest.Subtests) -> None:
    # Given a snapshot (never validated), and for each case a target that makes it harmful
    source, key = snapshot(world, users=8, groups=2)
    for case, (make, message) in REFUSALS.items():
        with subtests.test(msg=case):
            dst, options = make(world, key, source)
            before = everything(world, [source, dst])

            # When the restore is asked for, as a dry run or for real
            for dry_run in (True, False):
                with pytest.raises(RestoreRefusedError, match=message) as refused:
                    run_restore(
                        world.gateway,
                        world.store,
                        key,
                        dst,
                        options=options.model_copy(update={"dry_run": dry_run}),
                    )
                assert "Nothing was written" in str(refused.value)

            # Then nothing was written, to the pools or to the bucket; only the validator's
            # verdict on a snapshot it had to validate (and found invalid) is recorded
            after = everything(world, [source, dst])
            if case == "never-validated-and-invalid":
                assert world.store.get_tags(key) == {"validation": "failed"}
                after["objects"] = [o for o in after["objects"] if "validation-report" not in o[0]]
                after["tags"] = before["tags"]
            assert after == before


def test_force_restores_a_snapshot_with_a_failed_verdict(world: World) -> None:
    _, key = snapshot(world, users=8, groups=2)
    set_verdict(world, key, "failed")
    dst = target(world)

    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(force=True))

    assert report.status == "complete" and report.counts.created == 8


def test_allow_same_pool_restores_into_the_source(world: World) -> None:
    source, key = snapshot(world, users=8, groups=2)
    deleted = sorted(u.username for u in world.gateway.iter_users(source))[:2]
    for name in deleted:
        world.cognito.admin_delete_user(UserPoolId=source, Username=name)

    report = run_restore(
        world.gateway, world.store, key, source, options=RestoreOptions(allow_same_pool=True)
    )

    assert report.status == "complete" and report.counts.created == 2 and report.counts.unchanged == 6
    assert all(world.gateway.get_user(source, n) is not None for n in deleted)


def test_a_missing_target_pool_is_a_clear_error(world: World) -> None:
    _, key = snapshot(world, users=3, groups=1)
    with pytest.raises(PoolNotFoundError, match="target user pool us-east-1_Missing1 does not exist"):
        run_restore(world.gateway, world.store, key, "us-east-1_Missing1")


def test_a_missing_snapshot_is_a_clear_error(world: World) -> None:
    dst = target(world)
    with pytest.raises(Exception, match="no such object"):
        run_restore(world.gateway, world.store, "backups/us-east-1_X/full/2026/01/01/x/manifest.json", dst)


# ------------------------------------------------------------------ dry run


def test_a_dry_run_returns_the_plan_and_writes_nothing(world: World) -> None:
    # Given a never-validated snapshot, and a target where two of its users already exist
    source, key = snapshot(world, users=20, groups=3)
    dst = target(world, custom=ALL_CUSTOM[1:])
    existing = sorted(u.username for u in world.gateway.iter_users(source))[:2]
    for name in existing:
        world.cognito.admin_create_user(UserPoolId=dst, Username=name, MessageAction="SUPPRESS")
    before = everything(world, [source, dst])

    # When a dry run of the restore is asked for
    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(dry_run=True))

    # Then it returns the plan
    plan = report.plan
    assert report.dry_run and report.status == "complete" and plan is not None and report.report_key is None
    assert plan.custom_attributes_to_add == ["custom:tenant"]
    assert sorted(plan.groups_to_create) == sorted(g.name for g in world.gateway.iter_groups(source))
    assert (
        plan.users_to_create == 18
        and plan.users_existing == 2
        and sorted(plan.users_existing_names) == existing
    )
    assert plan.existing_users_will == "be skipped"
    assert plan.memberships_to_add + plan.memberships_not_restorable == len(
        pool_state(world.cognito, source)["memberships"]
    )
    assert plan.admin_action and not plan.truncated
    assert any("20 to create" not in line for line in report.summary_lines())
    # and nothing was written: not to the target, not to the bucket (not even a verdict)
    assert everything(world, [source, dst]) == before
    assert world.store.get_tags(key) == {}


def test_a_dry_run_plan_is_cut_at_its_limit(world: World) -> None:
    _, key = snapshot(world, users=10, groups=1)
    dst = target(world)
    report = run_restore(
        world.gateway, world.store, key, dst, options=RestoreOptions(dry_run=True, plan_limit=3)
    )
    assert report.plan is not None and report.plan.truncated and len(report.plan.users_to_create_names) == 3
    assert report.plan.users_to_create == 10


# ------------------------------------------------------------------ the Lambda


def settings_for(w: World) -> Settings:
    assert w.store.signing.mac is not None
    return Settings.model_validate(
        {"BUCKET_NAME": w.store.bucket, "SIGNING_KEY_ARN": w.store.signing.mac.key_id}
    )


def test_the_handler_restores_from_the_event(world: World, lambda_context: Any) -> None:
    _source, key = snapshot(world, users=6, groups=1)
    dst = target(world)
    event = {**load_event("restore"), "manifest_key": key, "target_user_pool_id": dst, "dry_run": False}

    result = restore_handler(event, lambda_context, settings_for(world))

    assert result["status"] == "complete" and result["counts"]["created"] == 6
    assert world.store.get_json(result["report_key"])["status"] == "complete"


def test_the_handler_answers_counts_and_keys_and_names_nobody(world: World, lambda_context: Any) -> None:
    source, key = snapshot(world, users=40, groups=2)
    names = [u["Username"] for u in world.cognito.list_users(UserPoolId=source)["Users"]]
    emails = [
        a["Value"]
        for u in world.cognito.list_users(UserPoolId=source)["Users"]
        for a in u["Attributes"]
        if a["Name"] == "email"
    ]
    event = {"manifest_key": key, "target_user_pool_id": target(world), "dry_run": False}

    result = restore_handler(event, lambda_context, settings_for(world))
    text = json.dumps(result)

    # The report (sub map, per-user outcomes) is in S3; the answer is the same few hundred
    # bytes for 40 users as for 40,000 (Step Functions carries at most 256 KB between states).
    assert set(result) == set(RestoreAnswer.model_fields) and len(text) < 2_000
    assert result["counts"]["created"] == 40 and world.store.get_json(result["report_key"])["sub_map"]
    assert names and emails and not [n for n in [*names, *emails] if n in text]


def test_the_handler_fails_the_invocation_when_the_restore_failed(world: World, lambda_context: Any) -> None:
    _, key = snapshot(world, users=3, groups=1)
    dst = target(world)
    event = {"manifest_key": key, "target_user_pool_id": dst, "usernames": ["nobody"]}

    with pytest.raises(RestoreFailedError, match=r"1 failure\(s\)") as raised:
        restore_handler(event, lambda_context, settings_for(world))
    assert "nobody" not in str(raised.value)  # the error names ids, counts and the report key
    assert str(raised.value).endswith(raised.value.answer.report_key or "no report key")


def test_the_lambda_refuses_a_malformed_event_naming_the_field(
    world: World, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUCKET_NAME", world.store.bucket)
    spec = importlib.util.spec_from_file_location("restore_app", REPO / "functions/restore/app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)

    with pytest.raises(UsageError, match="malformed restore event: target_pool"):
        app.handler({**load_event("restore"), "target_pool": "x"}, lambda_context)

    _, key = snapshot(world, users=3, groups=1)
    dst = target(world)
    result = app.handler(
        {**load_event("restore"), "manifest_key": key, "target_user_pool_id": dst}, lambda_context
    )
    assert result["dry_run"] is True and result["plan"]["users_to_create"] == 3


def test_the_handler_refuses_a_manifest_outside_its_prefix(world: World, lambda_context: Any) -> None:
    _, key = snapshot(world, users=3, groups=1)
    dst = target(world)
    world.store.put_bytes("planted/" + key, world.store.get_bytes(key))
    before = everything(world, [dst])

    with pytest.raises(UsageError, match="not under this deployment's prefix"):
        restore_handler(
            {"manifest_key": "planted/" + key, "target_user_pool_id": dst, "dry_run": False},
            lambda_context,
            settings_for(world),
        )
    assert everything(world, [dst]) == before


def test_an_unfinished_restore_in_the_handler_reports_incomplete(world: World, lambda_context: Any) -> None:
    _, key = snapshot(world, users=3, groups=1)
    dst = create_pool(world.cognito, "target", custom_attributes=ALL_CUSTOM)
    lambda_context.remaining_ms = 1_000  # already past the deadline margin: one step, then stop
    event = {"manifest_key": key, "target_user_pool_id": dst}

    first = restore_handler(event, lambda_context, settings_for(world))
    assert first["status"] == "incomplete" and first["checkpoint_key"]

    lambda_context.remaining_ms = 900_000
    assert restore_handler(event, lambda_context, settings_for(world))["status"] == "complete"
