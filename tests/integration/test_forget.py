"""`forget`: people removed from every snapshot and object version; the ledger honoured after."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from export_world import make_pool

from cognito_backup import forget as forget_module
from cognito_backup.chain import open_view
from cognito_backup.cognito import CognitoGateway
from cognito_backup.erasure import Ledger, erasures_prefix
from cognito_backup.errors import (
    EraseIncompleteError,
    ForgetRefusedError,
    RestoreRefusedError,
    SignatureError,
    UsageError,
)
from cognito_backup.forget import Forget
from cognito_backup.restore import run_restore
from cognito_backup.restore_models import RestoreOptions
from cognito_backup.signing import ManifestSigning
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore, checkpoint_key, pool_root
from cognito_backup.validate import validate_snapshot, verdict_of

PREFIX = "backups"
GONE = "carol.smith"  # index 2 in export_world's USERNAMES: e-mail u2@example.com
GONE_EMAIL = "u2@example.com"


def text(key: str, body: bytes) -> bytes:
    return gzip.decompress(body) if key.endswith(".gz") else body


def versions_naming(aws: Any, bucket: str, *needles: bytes) -> list[tuple[str, str]]:
    s3 = aws.s3()
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            if any(n in text(v["Key"], body) for n in needles):
                out.append((v["Key"], v["VersionId"]))
    return out


@pytest.fixture
def world(aws: Any, store: SnapshotStore, gateway: CognitoGateway) -> dict[str, Any]:
    return make_world(aws, store, gateway)


def make_world(aws: Any, store: SnapshotStore, gateway: CognitoGateway) -> dict[str, Any]:
    cognito = aws.cognito()
    pool = make_pool(cognito, extra_users=10, groups=3, big_group=8)
    first = run_export(gateway, store, pool).manifest_key
    cognito.admin_update_user_attributes(
        UserPoolId=pool, Username=GONE, UserAttributes=[{"Name": "given_name", "Value": "Changed"}]
    )
    incremental = run_export(gateway, store, pool, incremental=True).manifest_key
    second = run_export(gateway, store, pool).manifest_key
    keys = [first, incremental, second]
    for key in keys:
        assert validate_snapshot(store, key).valid
    sub = next(u.sub for u in gateway.iter_users(pool) if u.username == GONE)
    return {"pool": pool, "keys": keys, "sub": sub}


def target_pool(aws: Any) -> str:
    pool_id: str = aws.cognito().create_user_pool(
        PoolName="target",
        Schema=[
            {"Name": "tenant", "AttributeDataType": "String", "Mutable": False},
            {"Name": "level", "AttributeDataType": "Number", "Mutable": True},
        ],
    )["UserPool"]["Id"]
    return pool_id


def forget(store: SnapshotStore, pool: str, **kwargs: Any) -> Any:
    return Forget(store, pool, prefix=PREFIX, **kwargs).run()


def test_forget_erases_a_person_from_every_version_and_keeps_snapshots_valid(
    aws: Any, bucket: str, store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    pool, keys = world["pool"], world["keys"]
    needles = (GONE.encode(), GONE_EMAIL.encode(), world["sub"].encode())
    assert versions_naming(aws, bucket, *needles)

    result = forget(store, pool, usernames=[GONE])

    assert result.status == "complete"
    assert result.people_found == 1
    assert result.snapshots_checked == 3 and result.snapshots_rewritten == 3
    assert result.revalidated == {"passed": 3, "failed": 0}
    assert result.versions_deleted > 0
    assert versions_naming(aws, bucket, *needles) == []
    for key in keys:
        assert verdict_of(store, key) == "passed"
        assert validate_snapshot(store, key, record=False).valid
    # The ledger holds keyed hashes only.
    ledger_keys = list(store.list_keys(erasures_prefix(PREFIX, pool)))
    assert len(ledger_keys) == 1
    entry = json.loads(store.get_bytes(ledger_keys[0]))
    assert entry["status"] == "complete" and entry["signature"]["mac"]
    assert GONE not in json.dumps(entry) and world["sub"] not in json.dumps(entry)
    # Nothing printed names the person.
    assert GONE not in "\n".join(result.lines()) and GONE_EMAIL not in result.model_dump_json()


def test_a_restore_of_an_older_snapshot_does_not_bring_them_back(
    aws: Any, store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    pool, keys = world["pool"], world["keys"]
    forget(store, pool, usernames=[GONE])
    target = target_pool(aws)
    report = run_restore(gateway, store, keys[1], target, options=RestoreOptions())
    assert report.status == "complete"
    restored = {u.username for u in gateway.iter_users(target)}
    assert GONE not in restored and "alice" in restored


def test_later_exports_leave_a_forgotten_person_out_while_still_in_the_pool(
    aws: Any, bucket: str, store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    pool = world["pool"]
    forget(store, pool, subs=[world["sub"]])
    assert any(u.username == GONE for u in gateway.iter_users(pool))  # not deleted from the pool
    full = run_export(gateway, store, pool)
    incremental = run_export(gateway, store, pool, incremental=True)
    for key in (full.manifest_key, incremental.manifest_key):
        manifest = store.read_manifest(key)
        assert len(manifest.erasures_applied) == 1
        assert validate_snapshot(store, key).valid
    assert versions_naming(aws, bucket, GONE.encode(), GONE_EMAIL.encode()) == []


def test_delete_from_pool_deletes_the_person_there_too(
    store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    pool = world["pool"]
    result = forget(store, pool, usernames=[GONE], gateway=gateway, delete_from_pool=True)
    assert result.deleted_from_pool == 1
    assert not any(u.username == GONE for u in gateway.iter_users(pool))


def test_a_snapshot_not_cleared_of_an_erasure_is_not_restored(
    aws: Any, store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    """A snapshot written after the ledger entry by an export that began before it (its manifest
    does not claim the erasure) and not checked by the forget: refused until forget runs again."""
    pool, keys = world["pool"], world["keys"]
    forget(store, pool, usernames=["alice"])
    raw = json.loads(store.get_bytes(keys[2]))
    stale = store.read_manifest(keys[2]).model_copy(update={"erasures_applied": [], "signature": None})
    other = keys[2].replace(raw["snapshot_id"], raw["snapshot_id"] + "-09")
    store.write_manifest(other.rsplit("/", 1)[0] + "/", stale)
    with pytest.raises(RestoreRefusedError, match="predates erasure"):
        run_restore(gateway, store, other, "us-east-1_nothere", options=RestoreOptions(dry_run=True))


def test_forget_refuses_bad_input_and_a_running_export_changing_nothing(
    aws: Any, bucket: str, store: SnapshotStore, world: dict[str, Any]
) -> None:
    pool = world["pool"]
    before = sorted((v["Key"], v["VersionId"]) for v in store.list_versions(pool_root(PREFIX, pool)))
    with pytest.raises(UsageError):
        forget(store, pool)
    with pytest.raises(UsageError):
        forget(store, pool, usernames=[" "])
    store.put_json(checkpoint_key(PREFIX, pool, "export-full"), {"snapshot_id": "x"})
    with pytest.raises(ForgetRefusedError, match="under way"):
        forget(store, pool, usernames=[GONE])
    store.delete(checkpoint_key(PREFIX, pool, "export-full"))
    after = sorted((v["Key"], v["VersionId"]) for v in store.list_versions(pool_root(PREFIX, pool)))
    assert [k for k in after if k not in before] == [
        k for k in after if k[0] == checkpoint_key(PREFIX, pool, "export-full")
    ]


def test_a_forged_ledger_entry_is_refused(
    store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    pool = world["pool"]
    store.put_json(erasures_prefix(PREFIX, pool) + "forged.json", {"erasure_id": "x", "user_pool_id": pool})
    with pytest.raises(SignatureError):
        Ledger.load(store, PREFIX, pool)
    with pytest.raises(SignatureError):
        run_export(gateway, store, pool)


def test_versions_kept_by_object_lock_are_listed_with_their_dates(
    aws: Any, signing: ManifestSigning, gateway: CognitoGateway
) -> None:
    s3 = aws.s3()
    s3.create_bucket(Bucket="locked-backups", ObjectLockEnabledForBucket=True)
    store = SnapshotStore(s3, "locked-backups", signing=signing)
    world = make_world(aws, store, gateway)
    pool, keys = world["pool"], world["keys"]
    part = next(p for p in store.read_manifest(keys[0]).parts if p.kind == "users")
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    s3.put_object_retention(
        Bucket=store.bucket,
        Key=part.key,
        VersionId=part.version_id,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
    )
    result = forget(store, pool, usernames=[GONE])
    assert result.status == "locked"
    assert result.versions_locked == 1
    assert result.locked_until == until
    entry = Ledger.load(store, PREFIX, pool).entries[0][1]
    assert [(v.key, v.version_id) for v in entry.locked_versions] == [(part.key, part.version_id)]


def test_an_unreadable_snapshot_leaves_the_erasure_incomplete_and_the_others_restorable(
    aws: Any, store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    pool, keys = world["pool"], world["keys"]
    s3 = aws.s3()
    broken = next(p for p in store.read_manifest(keys[2]).parts if p.kind == "users")
    s3.delete_object(Bucket=store.bucket, Key=broken.key, VersionId=broken.version_id)

    with pytest.raises(EraseIncompleteError, match="1 snapshot\\(s\\) could not be read"):
        forget(store, pool, usernames=[GONE])

    entry = Ledger.load(store, PREFIX, pool).entries[0][1]
    assert entry.status == "in_progress" and keys[2] not in entry.checked_manifests
    assert set(keys[:2]) <= set(entry.checked_manifests)
    # The snapshots it cleared restore; the one it could not read is never restored.
    options = RestoreOptions(dry_run=True)
    planned = run_restore(gateway, store, keys[1], target_pool(aws), options=options)
    assert planned.status == "complete"
    with pytest.raises(RestoreRefusedError, match="predates erasure"):
        run_restore(gateway, store, keys[2], "us-east-1_nothere", options=options)


def test_a_run_cut_short_is_finished_by_the_next_one_which_adopts_it(
    aws: Any,
    bucket: str,
    store: SnapshotStore,
    gateway: CognitoGateway,
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool, keys = world["pool"], world["keys"]
    monkeypatch.setattr(forget_module, "PROGRESS_SAVE_SECONDS", 0.0)

    def cut(self: Forget, manifests: set[str]) -> None:
        raise TimeoutError("the Lambda's 15 minutes are up")

    with monkeypatch.context() as mp:
        mp.setattr(Forget, "_clear_other_objects", cut)
        with pytest.raises(TimeoutError):
            forget(store, pool, usernames=[GONE])
    first = Ledger.load(store, PREFIX, pool).entries[0][1]
    assert first.status == "in_progress" and len(first.checked_manifests) == 3  # saved as it went

    # By sub alone this time: every snapshot is already clear of the person, whose username the
    # run learns from nothing but the earlier entry's hashes; it finishes the erasure all the same.
    result = forget(store, pool, subs=[world["sub"]])
    assert result.status == "complete"
    second = next(e for _, e in Ledger.load(store, PREFIX, pool).entries if e.erasure_id == result.erasure_id)
    assert second.adopts == [first.erasure_id] and set(first.usernames) <= set(second.usernames)
    assert versions_naming(aws, bucket, GONE.encode(), GONE_EMAIL.encode(), world["sub"].encode()) == []
    target = target_pool(aws)
    assert run_restore(gateway, store, keys[0], target, options=RestoreOptions()).status == "complete"
    assert GONE not in {u.username for u in gateway.iter_users(target)}


def test_a_restore_report_s_parts_are_cleared_and_the_report_still_reads(
    aws: Any, bucket: str, store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    from cognito_backup.restore.report import iter_section
    from cognito_backup.restore_models import RestoreReport

    pool, keys = world["pool"], world["keys"]
    run_restore(gateway, store, keys[0], target_pool(aws), options=RestoreOptions())
    report_key = next(
        k for k in store.list_keys(pool_root(PREFIX, pool)) if "restore-report-" in k and k.endswith(".json")
    )
    before = RestoreReport.model_validate_json(store.get_bytes(report_key))
    mapped = dict(iter_section(store, before, "sub_map"))
    assert before.parts and world["sub"] in mapped

    forget(store, pool, usernames=[GONE])

    after = RestoreReport.model_validate_json(store.get_bytes(report_key))
    subs = dict(iter_section(store, after, "sub_map"))  # sizes and hashes match the rewritten parts
    assert world["sub"] not in subs and len(subs) == len(mapped) - 1


def test_an_export_leaves_out_the_tombstones_of_a_person_erased_from_a_base_not_yet_cleared(
    aws: Any, store: SnapshotStore, gateway: CognitoGateway, world: dict[str, Any]
) -> None:
    """A ledger entry whose forget has not yet rewritten the base (it runs, or was cut short):
    the person, deleted from the pool meanwhile, gets no tombstone naming them."""
    from cognito_backup.erasure import ErasureEntry, LedgerHasher, write_entry
    from cognito_backup.models import utcnow

    pool = world["pool"]
    hasher = LedgerHasher.for_pool(store, pool)
    entry = ErasureEntry(
        erasure_id="20261203T000000Z-abcdef",
        user_pool_id=pool,
        requested_at=utcnow(),
        usernames=[hasher.hash("username", GONE)],
    )
    write_entry(store, PREFIX, entry)
    aws.cognito().admin_delete_user(UserPoolId=pool, Username=GONE)
    aws.cognito().admin_delete_user(UserPoolId=pool, Username="alice")

    result = run_export(gateway, store, pool, incremental=True)

    manifest = store.read_manifest(result.manifest_key)
    assert manifest.erasures_applied == [entry.erasure_id] and result.counts.users_deleted == 1
    changes = [p for p in manifest.parts if p.kind == "changes"]
    assert not any(GONE.encode() in text(p.key, store.get_bytes(p.key)) for p in changes)


def test_a_pool_that_signs_in_with_e_mail_takes_the_address_as_the_username(
    aws: Any, bucket: str, store: SnapshotStore, gateway: CognitoGateway
) -> None:
    cognito = aws.cognito()
    pool = cognito.create_user_pool(PoolName="by-mail", UsernameAttributes=["email"])["UserPool"]["Id"]
    for address in ("keep@example.com", "Gone.Person@example.com"):
        cognito.admin_create_user(
            UserPoolId=pool,
            Username=address,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": address}],
        )
    key = run_export(gateway, store, pool).manifest_key
    assert key

    result = forget(store, pool, usernames=["gone.person@example.com"])

    assert result.people_found == 1 and result.records_removed >= 1
    kept = [u.attributes["email"] for u in open_view(store, key).users()]
    assert kept == ["keep@example.com"]
    assert versions_naming(aws, bucket, b"gone.person@example.com", b"Gone.Person@example.com") == []


def test_the_migration_fallback_does_not_answer_from_a_snapshot_not_cleared(
    store: SnapshotStore, world: dict[str, Any]
) -> None:
    from cognito_backup.errors import ErasurePendingError
    from cognito_backup.migrate import MigrationSource, _from_snapshot

    pool, keys = world["pool"], world["keys"]
    source = MigrationSource(user_pool_id=pool, client_id=None, backup_prefix=PREFIX)
    assert _from_snapshot(store, source, "bob+test").origin == "snapshot"
    forget(store, pool, usernames=[GONE])
    assert _from_snapshot(store, source, "bob+test").origin == "snapshot"  # cleared: still answers
    # A newer snapshot that claims no erasure and that the forget never checked (its verdict
    # set by hand: its parts are the older snapshot's, in another folder).
    raw = json.loads(store.get_bytes(keys[2]))
    stale = store.read_manifest(keys[2]).model_copy(update={"erasures_applied": [], "signature": None})
    other = keys[2].replace(raw["snapshot_id"], raw["snapshot_id"] + "-09")
    store.write_manifest(other.rsplit("/", 1)[0] + "/", stale)
    store.put_tags(other, {"validation": "passed"})
    with pytest.raises(ErasurePendingError):
        _from_snapshot(store, source, "bob+test")
