"""The validator against real snapshots in moto S3: each corruption caught, named, recorded."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import BUCKET
from moto import mock_aws
from pydantic import ValidationError

from cognito_backup import validate
from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import SnapshotNotFoundError, UsageError
from cognito_backup.export import ExportOptions
from cognito_backup.models import (
    SCHEMA_VERSION,
    Counts,
    GroupDeletedRecord,
    GroupRecord,
    Manifest,
    MembershipRecord,
    MembershipRemovedRecord,
    Record,
    UserDeletedRecord,
    UserRecord,
    utcnow,
)
from cognito_backup.pacing import Pacer
from cognito_backup.signing import KmsMac, ManifestSigning, canonical_json
from cognito_backup.snapshot import run_export
from cognito_backup.store import MANIFEST_NAME, PartWriter, SnapshotStore, manifest_dir, snapshot_dir
from cognito_backup.validate import (
    CHECK_BASE,
    CHECK_MEMBERSHIPS,
    CHECK_PART_SHA256,
    CHECK_STRAYS,
    CHECK_TOMBSTONES,
    ValidationReport,
    report_key,
    validate_snapshot,
    verdict_of,
)
from cognito_local.inprocess import moto_extras
from cognito_local.keys import create_signing_key

PLAIN_BUCKET = "cognito-backup-plain"  # not versioned: parts carry no version id


# ---------------------------------------------------------------------- helpers


def make_pool(aws: AwsClients, name: str = "validate-pool") -> str:
    """admins{alice}, editors{bob}; carol in no group."""
    idp = aws.cognito()
    pool_id: str = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    for group in ("admins", "editors"):
        idp.create_group(UserPoolId=pool_id, GroupName=group)
    for user in ("alice", "bob", "carol"):
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=user,
            UserAttributes=[{"Name": "email", "Value": f"{user}@example.com"}],
            MessageAction="SUPPRESS",
        )
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="alice", GroupName="admins")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="bob", GroupName="editors")
    return pool_id


def raw_manifest(store: SnapshotStore, key: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(store.get_bytes(key))
    return data


def part_entry(manifest: dict[str, Any], kind: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(p for p in manifest["parts"] if p["kind"] == kind)
    return entry


def name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def gz(*lines: str) -> bytes:
    return gzip.compress("".join(line + "\n" for line in lines).encode(), mtime=0)


def rewrite_part(store: SnapshotStore, manifest_key: str, kind: str, body: bytes, records: int) -> str:
    """What a buggy export would do: write `body` as the part and list it faithfully."""
    manifest = raw_manifest(store, manifest_key)
    entry = part_entry(manifest, kind)
    sha, version = store.put_bytes(entry["key"], body)
    entry.update(bytes=len(body), sha256=sha, version_id=version, records=records)
    put_manifest(store, manifest_key, manifest)
    return str(entry["key"])


def put_manifest(store: SnapshotStore, key: str, manifest: dict[str, Any]) -> None:
    """Write a manifest as an export would: signed, when it is a manifest at all (a broken one,
    that does not parse, is written as it is: it fails before its signature is looked at)."""
    doc = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        parsed = Manifest.model_validate(doc)
    except ValidationError:
        parsed = None
    if parsed is None or canonical_json(parsed) != canonical_json(doc):  # coerced: not as written
        store.put_json(key, manifest)
        return
    store.put_json(key, store.signing.sign(parsed))


def problems(report: ValidationReport) -> list[str]:
    return [f.problem for f in report.failures]


def only_problem(report: ValidationReport) -> str:
    assert not report.valid
    assert len(report.failures) == 1, problems(report)
    return report.failures[0].problem


@dataclass(frozen=True)
class Moto:
    """One moto account for the whole module: a versioned and an unversioned bucket."""

    aws: AwsClients
    gateway: CognitoGateway
    store: SnapshotStore  # versioned, like the deployed bucket
    plain_store: SnapshotStore  # versioning off: parts carry no version id
    manifest_key: str  # a real export of a real (moto) pool, under the prefix "exported"
    manifest: dict[str, Any]
    bodies: dict[str, bytes]


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    """moto started once per module, with one real export to copy from.

    Starting moto, creating clients and a pool and exporting it cost most of a second per
    test; each test instead replays the exported bytes under a prefix of its own, so tests
    stay independent at a few milliseconds each.
    """
    with pytest.MonkeyPatch.context() as env, mock_aws(), moto_extras():
        for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):  # as conftest's _aws_env: never real AWS
            env.delenv(var, raising=False)
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(var, "testing")
        aws = AwsClients(region="us-east-1")
        s3 = aws.s3()
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=PLAIN_BUCKET)
        signing = ManifestSigning(KmsMac(aws.kms(), create_signing_key(aws.kms())))
        store = SnapshotStore(s3, BUCKET, signing=signing)
        gateway = CognitoGateway(aws.cognito(), Pacer(quotas={}), base_delay=0.0)
        result = run_export(gateway, store, make_pool(aws), options=ExportOptions(prefix="exported"))
        assert result.manifest_key
        manifest = raw_manifest(store, result.manifest_key)
        bodies = {p["key"]: store.get_bytes(p["key"]) for p in manifest["parts"]}
        yield Moto(
            aws,
            gateway,
            store,
            SnapshotStore(s3, PLAIN_BUCKET, signing=signing),
            result.manifest_key,
            manifest,
            bodies,
        )


@pytest.fixture
def store(moto: Moto) -> SnapshotStore:
    """Overrides conftest's `store`: the module's versioned bucket."""
    return moto.store


@pytest.fixture
def plain_store(moto: Moto) -> SnapshotStore:
    return moto.plain_store


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A backup prefix of this test's own, so tests sharing the buckets cannot meet."""
    return "t-" + request.node.name.replace("[", "-").replace("]", "")


def replay(store: SnapshotStore, moto: Moto, prefix: str) -> str:
    """Write the exported snapshot under `prefix` as the export does: parts, then manifest."""
    manifest = copy.deepcopy(moto.manifest)
    for entry in manifest["parts"]:
        body = moto.bodies[entry["key"]]
        entry["key"] = prefix + entry["key"].removeprefix("exported")
        _, entry["version_id"] = store.put_bytes(entry["key"], body)
    key = prefix + moto.manifest_key.removeprefix("exported")
    put_manifest(store, key, manifest)
    return key


@pytest.fixture
def snapshot(moto: Moto, prefix: str) -> str:
    """A real full snapshot (replayed) in the versioned bucket."""
    return replay(moto.store, moto, prefix)


@pytest.fixture
def plain_snapshot(moto: Moto, prefix: str) -> str:
    """The same snapshot in the bucket without versioning."""
    return replay(moto.plain_store, moto, prefix)


# ---------------------------------------------------------------------- clean


def test_clean_snapshot_passes_is_tagged_and_reported(store: SnapshotStore, snapshot: str) -> None:
    # Given a fresh export whose manifest already carries an unrelated tag
    store.put_tags(snapshot, {"owner": "team-identity"})

    # When it is validated
    report = validate_snapshot(store, snapshot)

    # Then it passes, the tag says so (other tags kept) and the report sits beside it
    assert report.valid, problems(report)
    assert report.failures == []
    assert (report.counts.users, report.counts.groups, report.counts.memberships) == (3, 2, 2)
    assert report.counts.parts == len(store.read_manifest(snapshot).parts)
    assert report.counts.bytes > 0
    assert {CHECK_PART_SHA256, CHECK_MEMBERSHIPS, CHECK_STRAYS} <= set(report.checks)
    assert store.get_tags(snapshot) == {"owner": "team-identity", "validation": "passed"}
    assert verdict_of(store, snapshot) == "passed"
    stored = ValidationReport.model_validate(store.get_json(report_key(snapshot)))
    assert stored.valid and stored.snapshot_id == report.snapshot_id
    assert stored.manifest_key == snapshot


def test_fresh_export_of_a_live_pool_passes(moto: Moto, prefix: str) -> None:
    # Given a pool exported within this test (not replayed)
    pool_id = make_pool(moto.aws, "fresh")
    key = run_export(moto.gateway, moto.store, pool_id, options=ExportOptions(prefix=prefix)).manifest_key
    assert key
    store = moto.store

    # Then it validates clean
    report = validate_snapshot(store, key)
    assert report.valid, problems(report)
    assert report.counts.users == 3


def test_revalidation_does_not_count_reports_as_strays(store: SnapshotStore, snapshot: str) -> None:
    validate_snapshot(store, snapshot)
    store.put_json(manifest_dir(snapshot) + "restore-report-20261122T000000Z.json", {"ok": True})
    store.put_bytes(manifest_dir(snapshot) + "restore-report-20261122T000000Z-sub_map-00001.ndjson.gz", b"")

    assert validate_snapshot(store, snapshot).valid


def test_a_report_like_data_part_is_still_a_stray(store: SnapshotStore, snapshot: str) -> None:
    store.put_bytes(manifest_dir(snapshot) + "restore-report-x-users-00001.jsonl.gz", b"")

    assert not validate_snapshot(store, snapshot).valid


def test_clean_snapshot_in_unversioned_bucket_passes(plain_store: SnapshotStore, plain_snapshot: str) -> None:
    assert validate_snapshot(plain_store, plain_snapshot).valid


def test_record_false_leaves_no_trace(store: SnapshotStore, snapshot: str) -> None:
    assert validate_snapshot(store, snapshot, record=False).valid
    assert verdict_of(store, snapshot) is None
    assert store.head(report_key(snapshot)) is None


# ---------------------------------------------------------------------- corruptions


def test_truncated_part(plain_store: SnapshotStore, plain_snapshot: str) -> None:
    key = part_entry(raw_manifest(plain_store, plain_snapshot), "users")["key"]
    body = plain_store.get_bytes(key)
    plain_store.put_bytes(key, body[: len(body) // 2])

    report = validate_snapshot(plain_store, plain_snapshot)

    found = problems(report)
    assert f"{name(key)}: size mismatch (manifest {len(body)} bytes, stored {len(body) // 2})" in found
    assert any(p.startswith(f"{name(key)}: sha256 mismatch (manifest ") for p in found)
    assert any(p.startswith(f"{name(key)}: gzip stream truncated after ") for p in found)
    assert verdict_of(plain_store, plain_snapshot) == "failed"


def test_one_flipped_byte(plain_store: SnapshotStore, plain_snapshot: str) -> None:
    key = part_entry(raw_manifest(plain_store, plain_snapshot), "users")["key"]
    body = bytearray(plain_store.get_bytes(key))
    body[len(body) // 2] ^= 0x01
    plain_store.put_bytes(key, bytes(body))

    report = validate_snapshot(plain_store, plain_snapshot)

    assert any(p.startswith(f"{name(key)}: sha256 mismatch (manifest ") for p in problems(report))
    assert all(f.part == key for f in report.failures if name(key) in f.problem)


def test_missing_part(plain_store: SnapshotStore, plain_snapshot: str) -> None:
    key = part_entry(raw_manifest(plain_store, plain_snapshot), "memberships")["key"]
    plain_store.delete(key)

    problem = only_problem(validate_snapshot(plain_store, plain_snapshot))

    assert problem == f"{name(key)}: missing (listed in the manifest, not in the bucket)"


def test_deleted_part_in_versioned_bucket(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    entry = part_entry(manifest, "memberships")
    store.delete(entry["key"])  # a delete marker; the recorded version stays

    problem = only_problem(validate_snapshot(store, snapshot))

    assert problem == (
        f"{name(entry['key'])}: missing: deleted after the manifest was written (a delete marker "
        f"hides it; its recorded version {entry['version_id']} is still kept)"
    )


def test_part_listed_but_never_written(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    ghost = dict(part_entry(manifest, "users"), key=manifest_dir(snapshot) + "users-00099.jsonl.gz")
    manifest["parts"].append(ghost)
    put_manifest(store, snapshot, manifest)

    problem = only_problem(validate_snapshot(store, snapshot))

    assert problem == "users-00099.jsonl.gz: missing (listed in the manifest, not in the bucket)"


def test_stray_part(store: SnapshotStore, snapshot: str) -> None:
    stray = manifest_dir(snapshot) + "users-00099.jsonl.gz"
    store.put_bytes(stray, gz('{"type":"user"}'))

    report = validate_snapshot(store, snapshot)

    assert only_problem(report) == (
        "users-00099.jsonl.gz: stray object (in the snapshot's folder, not listed in the manifest)"
    )
    assert report.failures[0].part == stray


def test_manifest_count_disagrees(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    manifest["counts"]["users"] = 99
    put_manifest(store, snapshot, manifest)

    assert (
        only_problem(validate_snapshot(store, snapshot))
        == "manifest.json: counts.users is 99, the parts hold 3"
    )


def test_part_record_count_disagrees(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    entry = part_entry(manifest, "groups")
    entry["records"] = 7
    put_manifest(store, snapshot, manifest)

    problem = only_problem(validate_snapshot(store, snapshot))

    assert problem == f"{name(entry['key'])}: record count mismatch (manifest 7, found 2)"


def test_unknown_schema_version(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    manifest["schema_version"] = 99
    put_manifest(store, snapshot, manifest)

    report = validate_snapshot(store, snapshot)

    assert only_problem(report) == "manifest.json: unknown schema_version 99 (supported: 1)"
    assert report.snapshot_id == manifest["snapshot_id"]  # described as far as it can be
    assert verdict_of(store, snapshot) == "failed"


def test_manifest_that_does_not_parse(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    del manifest["parts"]
    put_manifest(store, snapshot, manifest)

    assert (
        only_problem(validate_snapshot(store, snapshot))
        == "manifest.json: does not parse (parts: Field required)"
    )


def test_manifest_that_is_not_json(store: SnapshotStore, snapshot: str) -> None:
    store.put_bytes(snapshot, b'{"schema_version": 1, "parts": [')

    report = validate_snapshot(store, snapshot)

    assert only_problem(report).startswith("manifest.json: not JSON (")
    assert report.failures[0].part == snapshot
    assert verdict_of(store, snapshot) == "failed"
    assert ValidationReport.model_validate(store.get_json(report_key(snapshot))).valid is False


def test_record_that_does_not_parse(store: SnapshotStore, snapshot: str) -> None:
    key = part_entry(raw_manifest(store, snapshot), "users")["key"]
    lines = gzip.decompress(store.get_bytes(key)).decode().splitlines()
    key = rewrite_part(
        store, snapshot, "users", gz(*lines, '{"type":"user","username":"dave"}'), len(lines) + 1
    )

    problem = only_problem(validate_snapshot(store, snapshot))

    assert problem == f"{name(key)}: line 4: record does not parse (user.attributes: Field required)"


def test_record_of_the_wrong_type_for_its_part(store: SnapshotStore, snapshot: str) -> None:
    key = rewrite_part(
        store, snapshot, "groups", gz('{"type":"membership","group":"admins","username":"bob"}'), 1
    )

    report = validate_snapshot(store, snapshot)

    assert f"{name(key)}: line 1: a 'membership' record does not belong in a groups part" in problems(report)


def test_membership_naming_a_user_who_is_not_there(store: SnapshotStore, snapshot: str) -> None:
    membership = MembershipRecord(group="admins", username="ghost").model_dump_json()
    key = part_entry(raw_manifest(store, snapshot), "memberships")["key"]
    lines = gzip.decompress(store.get_bytes(key)).decode().splitlines()
    key = rewrite_part(store, snapshot, "memberships", gz(*lines, membership), len(lines) + 1)
    manifest = raw_manifest(store, snapshot)
    manifest["counts"]["memberships"] += 1
    put_manifest(store, snapshot, manifest)

    report = validate_snapshot(store, snapshot)

    assert (
        f"{name(key)}: line 3: membership of 'ghost' in 'admins' names a user not in the snapshot"
        in problems(report)
    )


def test_membership_naming_a_group_that_is_not_there(store: SnapshotStore, snapshot: str) -> None:
    key = rewrite_part(
        store, snapshot, "memberships", gz('{"type":"membership","group":"nobody","username":"bob"}'), 1
    )

    report = validate_snapshot(store, snapshot)

    assert (
        f"{name(key)}: line 1: membership of 'bob' in 'nobody' names a group not in the snapshot"
        in problems(report)
    )


def test_part_overwritten_by_a_new_version(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    entry = part_entry(manifest, "users")
    _, new_version = store.put_bytes(entry["key"], gz('{"type":"user","username":"mallory"}'))

    problem = only_problem(validate_snapshot(store, snapshot))

    assert problem.startswith(
        f"{name(entry['key'])}: overwritten after the manifest was written: version_id mismatch "
        f"(manifest {entry['version_id']}, current {new_version}); "
        f"sha256 mismatch (manifest {entry['sha256'][:12]}…"
    )


def test_part_rewritten_with_identical_bytes_is_still_caught(store: SnapshotStore, snapshot: str) -> None:
    entry = part_entry(raw_manifest(store, snapshot), "groups")
    store.put_bytes(entry["key"], store.get_bytes(entry["key"]))

    problem = only_problem(validate_snapshot(store, snapshot))

    assert "version_id mismatch" in problem
    assert problem.endswith("content identical (sha256 matches)")


def test_gzip_garbage(store: SnapshotStore, snapshot: str) -> None:
    key = rewrite_part(store, snapshot, "users", b"this was never gzip\n" * 4, 3)

    problem = only_problem(validate_snapshot(store, snapshot))

    assert problem.startswith(f"{name(key)}: not a valid gzip stream (Not a gzipped file")


def test_gzip_with_corrupt_deflate_data(store: SnapshotStore, snapshot: str) -> None:
    key = part_entry(raw_manifest(store, snapshot), "users")["key"]
    body = bytearray(store.get_bytes(key))
    body[12:40] = b"\xff" * 28  # the deflate stream, just after the 10-byte header
    rewrite_part(store, snapshot, "users", bytes(body), 3)

    report = validate_snapshot(store, snapshot)

    assert any(p.startswith(f"{name(key)}: not a valid gzip stream (") for p in problems(report))


def test_manifest_that_is_not_an_object(store: SnapshotStore, snapshot: str) -> None:
    store.put_bytes(snapshot, b"[1, 2, 3]")

    assert only_problem(validate_snapshot(store, snapshot)) == "manifest.json: not a JSON object"


@pytest.mark.parametrize(("value", "shown"), [(None, "None"), ("1", "'1'"), ([1], "[1]"), (True, "True")])
def test_schema_version_must_be_a_known_integer(
    store: SnapshotStore, snapshot: str, value: Any, shown: str
) -> None:
    manifest = raw_manifest(store, snapshot)
    manifest["schema_version"] = value
    put_manifest(store, snapshot, manifest)

    assert only_problem(validate_snapshot(store, snapshot)) == (
        f"manifest.json: unknown schema_version {shown} (supported: 1)"
    )


def test_manifest_part_list_problems(store: SnapshotStore, snapshot: str) -> None:
    # Given a manifest that lists a part twice, one outside its folder, one of no known
    # kind, names a base although it is full, and has lost its config part
    manifest = raw_manifest(store, snapshot)
    config = part_entry(manifest, "config")
    manifest["parts"].remove(config)
    users = part_entry(manifest, "users")
    outside = dict(users, key="elsewhere/users-00001.jsonl.gz")
    odd = dict(users, key=manifest_dir(snapshot) + "passwords-00009.jsonl.gz", kind=None)
    manifest["parts"] += [dict(users), outside, odd]
    manifest["base_manifest_key"] = snapshot
    put_manifest(store, snapshot, manifest)
    store.put_bytes(config["key"], b"")  # keep the folder free of a stray for this test

    found = problems(validate_snapshot(store, snapshot))

    assert f"{name(users['key'])}: listed twice in the manifest" in found
    assert "users-00001.jsonl.gz: outside the snapshot's folder (elsewhere/users-00001.jsonl.gz)" in found
    assert "passwords-00009.jsonl.gz: unknown part kind" in found
    assert "manifest.json: a full snapshot names a base_manifest_key" in found
    assert "manifest.json: a full snapshot without a config part" in found


def test_recorded_version_gone(store: SnapshotStore, snapshot: str) -> None:
    entry = part_entry(raw_manifest(store, snapshot), "groups")
    store.put_bytes(entry["key"], store.get_bytes(entry["key"]))
    store._s3.delete_object(Bucket=store.bucket, Key=entry["key"], VersionId=entry["version_id"])

    problem = only_problem(validate_snapshot(store, snapshot))

    assert (
        problem
        == f"{name(entry['key'])}: missing: its recorded version {entry['version_id']} is not in the bucket"
    )


def test_state_index_that_disagrees_with_the_parts(store: SnapshotStore, snapshot: str) -> None:
    key = part_entry(raw_manifest(store, snapshot), "state")["key"]
    lines = [
        line
        for line in gzip.decompress(store.get_bytes(key)).decode().splitlines()
        if '"username":"carol"' not in line or '"state_user"' not in line
    ]
    rewrite_part(store, snapshot, "state", gz(*lines), len(lines))

    assert only_problem(validate_snapshot(store, snapshot)) == (
        "state parts: the index lists 2 users, the snapshot holds 3"
    )


def test_many_bad_records_are_summarised(store: SnapshotStore, snapshot: str) -> None:
    key = rewrite_part(store, snapshot, "users", gz(*['{"type":"user"}'] * 8), 8)

    found = problems(validate_snapshot(store, snapshot))

    assert len([p for p in found if ": record does not parse (" in p]) == 5
    assert f"{name(key)}: 3 more bad records" in found


def test_failures_are_capped(store: SnapshotStore, snapshot: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "MAX_FAILURES", 2)
    for n in range(4):
        store.put_bytes(manifest_dir(snapshot) + f"junk-{n}.txt", b"x")

    report = validate_snapshot(store, snapshot)

    assert len(report.failures) == 3
    assert report.failures[-1].problem == "2 more problem(s) not listed"


def test_overlong_line(store: SnapshotStore, snapshot: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "MAX_LINE_BYTES", 500)  # only the pool config is longer
    key = part_entry(raw_manifest(store, snapshot), "config")["key"]

    problem = only_problem(validate_snapshot(store, snapshot))

    assert problem == f"{name(key)}: line 1 is longer than 500 bytes"


def test_missing_manifest_raises_and_writes_nothing(store: SnapshotStore, snapshot: str) -> None:
    absent = manifest_dir(snapshot).replace("/full/", "/incremental/") + MANIFEST_NAME
    with pytest.raises(SnapshotNotFoundError):
        validate_snapshot(store, absent)
    assert store.head(report_key(absent)) is None


def test_not_a_manifest_key_is_a_usage_error(store: SnapshotStore, snapshot: str) -> None:
    with pytest.raises(UsageError, match="not a manifest key"):
        validate_snapshot(store, manifest_dir(snapshot) + "users-00004.jsonl.gz")


# ---------------------------------------------------------------------- incrementals


def write_incremental(
    store: SnapshotStore,
    base_key: str,
    changes: list[Record],
    *,
    snapshot_id: str = "20991231T000000Z",
    pool_id: str | None = None,
    extra_kind: str | None = None,
) -> str:
    """An incremental the way the export writes one: changes parts, then the manifest."""
    base = store.read_manifest(base_key)
    pool = pool_id or base.user_pool_id
    prefix = base_key.split(f"/{base.user_pool_id}/")[0]
    directory = snapshot_dir(prefix, pool, "incremental", snapshot_id)
    writer = PartWriter(store, directory, "changes")
    counts = Counts()
    for record in changes:
        writer.write(record)
        field = {
            "user": "users",
            "group": "groups",
            "membership": "memberships",
            "user_deleted": "users_deleted",
            "group_deleted": "groups_deleted",
            "membership_removed": "memberships_removed",
        }[record.type]
        setattr(counts, field, getattr(counts, field) + 1)
    parts = [p for p in [writer.close(1)] if p is not None]
    if extra_kind == "users":
        users = PartWriter(store, directory, "users")
        users.write(UserRecord(username="zed", attributes={}, status="CONFIRMED", enabled=True))
        extra = users.close(2)
        assert extra is not None
        parts.append(extra)
    now = utcnow()
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        snapshot_id=snapshot_id,
        kind="incremental",
        user_pool_id=pool,
        region="us-east-1",
        started_at=now,
        finished_at=now,
        base_manifest_key=base_key,
        counts=counts,
        parts=parts,
    )
    return store.write_manifest(directory, manifest)


def user(username: str) -> UserRecord:
    return UserRecord(
        username=username, attributes={"email": f"{username}@example.com"}, status="CONFIRMED", enabled=True
    )


def test_incremental_on_an_untagged_base_validates_the_base_without_recording_it(
    store: SnapshotStore, snapshot: str
) -> None:
    inc = write_incremental(
        store,
        snapshot,
        [
            user("dave"),
            MembershipRecord(group="admins", username="dave"),
            UserDeletedRecord(username="carol"),
            MembershipRemovedRecord(group="editors", username="bob"),
            GroupDeletedRecord(name="editors"),
            GroupRecord(name="auditors"),
            MembershipRecord(group="auditors", username="bob"),
        ],
    )

    report = validate_snapshot(store, inc)

    assert report.valid, problems(report)
    assert {CHECK_BASE, CHECK_MEMBERSHIPS, CHECK_TOMBSTONES} <= set(report.checks)
    assert (report.counts.users, report.counts.groups, report.counts.memberships) == (1, 1, 2)
    assert (report.counts.users_deleted, report.counts.groups_deleted, report.counts.memberships_removed) == (
        1,
        1,
        1,
    )
    assert verdict_of(store, inc) == "passed"
    assert verdict_of(store, snapshot) is None


def test_incremental_on_a_failed_base_fails(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [user("dave")])
    store.put_tags(snapshot, {"validation": "failed"})

    assert only_problem(validate_snapshot(store, inc)) == (
        f"base {snapshot}: its validation failed (tag validation=failed)"
    )


def test_incremental_on_an_untagged_invalid_base_fails(store: SnapshotStore, snapshot: str) -> None:
    manifest = raw_manifest(store, snapshot)
    manifest["counts"]["groups"] = 5
    put_manifest(store, snapshot, manifest)
    inc = write_incremental(store, snapshot, [user("dave")])

    problem = only_problem(validate_snapshot(store, inc))

    assert problem == (
        f"base {snapshot}: invalid (1 problem(s), first: manifest.json: counts.groups is 5, the parts hold 2)"
    )


def test_incremental_whose_base_is_gone(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [user("dave")])
    store.delete(snapshot)

    problem = only_problem(validate_snapshot(store, inc))

    assert problem == f"base {snapshot}: does not exist"


def test_incremental_on_a_base_of_another_pool(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [user("dave")], pool_id="us-east-1_OtherPool1")

    report = validate_snapshot(store, inc)

    assert (
        only_problem(report)
        == f"base {snapshot}: a snapshot of another pool ({store.read_manifest(snapshot).user_pool_id})"
    )


def test_tombstone_for_a_user_who_never_was(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [UserDeletedRecord(username="nobody")])
    key = store.read_manifest(inc).parts[0].key

    problem = only_problem(validate_snapshot(store, inc))

    assert problem == f"{name(key)}: line 1: tombstone for user 'nobody', who is not in the base chain"


def test_tombstone_for_a_group_that_never_was(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [GroupDeletedRecord(name="nobody")])

    assert only_problem(validate_snapshot(store, inc)).endswith(
        "line 1: tombstone for group 'nobody', which is not in the base chain"
    )


def test_incremental_membership_of_a_user_deleted_at_that_point(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(
        store,
        snapshot,
        [MembershipRecord(group="editors", username="carol"), UserDeletedRecord(username="carol")],
    )
    key = store.read_manifest(inc).parts[0].key

    problem = only_problem(validate_snapshot(store, inc))

    assert problem == (
        f"{name(key)}: membership of 'carol' in 'editors' names a user not in the chain at this snapshot"
    )


def test_incremental_may_not_hold_full_parts(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [user("dave")], extra_kind="users")

    problem = only_problem(validate_snapshot(store, inc))

    assert problem == "users-00002.jsonl.gz: users parts do not belong in incremental snapshots"


def test_incremental_that_is_its_own_base(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [user("dave")])
    manifest = raw_manifest(store, inc)
    manifest["base_manifest_key"] = inc
    put_manifest(store, inc, manifest)

    assert only_problem(validate_snapshot(store, inc)) == f"base {inc}: the chain loops back to it"


def test_incremental_older_than_its_base(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [user("dave")], snapshot_id="20000101T000000Z")

    assert only_problem(validate_snapshot(store, inc)).endswith("is not older than 20000101T000000Z")


def test_incremental_without_base_key(store: SnapshotStore, snapshot: str) -> None:
    inc = write_incremental(store, snapshot, [UserDeletedRecord(username="nobody")])
    manifest = raw_manifest(store, inc)
    manifest["base_manifest_key"] = None
    put_manifest(store, inc, manifest)

    # The tombstone cannot be judged without a base: only the missing base is reported
    assert (
        only_problem(validate_snapshot(store, inc))
        == "manifest.json: an incremental without a base_manifest_key"
    )


def test_incremental_whose_base_state_cannot_be_read(store: SnapshotStore, snapshot: str) -> None:
    rewrite_part(store, snapshot, "state", b"garbage", 0)
    store.put_tags(snapshot, {"validation": "passed"})  # tagged before the damage
    inc = write_incremental(store, snapshot, [user("dave")])

    problem = only_problem(validate_snapshot(store, inc))

    assert problem.startswith(f"base {snapshot}: its users and groups cannot be read (Not a gzipped file")


def test_chain_of_incrementals_without_state_index(store: SnapshotStore, snapshot: str) -> None:
    # Given full <- inc1 (adds dave; no state index) <- inc2 (deletes dave)
    inc1 = write_incremental(store, snapshot, [user("dave")], snapshot_id="20991231T000000Z")
    inc2 = write_incremental(
        store,
        inc1,
        [UserDeletedRecord(username="dave"), MembershipRecord(group="admins", username="bob")],
        snapshot_id="20991231T010000Z",
    )

    # When the newest is validated, its base's names come from replaying the chain
    report = validate_snapshot(store, inc2)

    # Then the tombstone of a user added by inc1 is accepted
    assert report.valid, problems(report)
