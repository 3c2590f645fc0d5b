"""Signed manifests against moto: the forgery of issue 13 refused everywhere, nothing written.

The forgery is the one an attacker with write access to the prefix can make: a user with a
verified e-mail added to the parts with a membership of `admins`, every hash, size, count and
the state index recomputed, the manifest rewritten, with its old signature kept or removed.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import load_event

from cognito_backup.aws import AwsClients
from cognito_backup.cli import main
from cognito_backup.cognito import CognitoGateway
from cognito_backup.digest import user_digest
from cognito_backup.errors import (
    RestoreRefusedError,
    SignatureError,
    SnapshotCorruptError,
    SnapshotInvalidError,
    UsageError,
)
from cognito_backup.handlers import parse_restore_event, restore_handler, validator_handler
from cognito_backup.models import MembershipRecord, PartInfo, UserRecord, UserStateRecord
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.restore_models import MAX_EVENT_NAMES
from cognito_backup.settings import Settings
from cognito_backup.signing import KmsMac, ManifestSigning
from cognito_backup.snapshot import run_export
from cognito_backup.store import MAX_LINE_BYTES, MAX_MANIFEST_BYTES, SnapshotStore
from cognito_backup.validate import validate_snapshot, verdict_of
from cognito_local.keys import create_signing_key
from cognito_local.seed import create_pool

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

FORGED = "mallory"


# ---------------------------------------------------------------------- helpers


@dataclass
class World:
    aws: AwsClients
    store: SnapshotStore
    gateway: CognitoGateway
    key_arn: str
    source: str
    target: str

    def store_with(self, *, allow_unsigned: bool = False, key: str | None = None) -> SnapshotStore:
        signing = ManifestSigning(KmsMac(self.aws.kms(), key or self.key_arn), allow_unsigned=allow_unsigned)
        return SnapshotStore(self.aws.s3(), self.store.bucket, signing=signing)

    def settings(self) -> Settings:
        return Settings.model_validate({"BUCKET_NAME": self.store.bucket, "SIGNING_KEY_ARN": self.key_arn})

    def target_users(self) -> list[str]:
        users = self.aws.cognito().list_users(UserPoolId=self.target)["Users"]
        return sorted(u["Username"] for u in users)

    def objects(self) -> list[tuple[str, str]]:
        versions = self.aws.s3().list_object_versions(Bucket=self.store.bucket).get("Versions", [])
        return sorted((v["Key"], v["VersionId"]) for v in versions)


@pytest.fixture
def world(
    aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway, signing_key: str, restore_logger: None
) -> World:
    """The source pool (alice in admins, bob) and an empty target; the CLI's quieting of the
    logger is undone after each test (restore_logger)."""
    idp = aws.cognito()
    source = create_pool(idp, "source")
    idp.create_group(UserPoolId=source, GroupName="admins")
    for user in ("alice", "bob"):
        idp.admin_create_user(
            UserPoolId=source,
            Username=user,
            UserAttributes=[{"Name": "email", "Value": f"{user}@example.com"}],
            MessageAction="SUPPRESS",
        )
    idp.admin_add_user_to_group(UserPoolId=source, Username="alice", GroupName="admins")
    return World(aws, store, gateway, signing_key, source, create_pool(idp, "target"))


def export(w: World, *, incremental: bool = False) -> str:
    key = run_export(w.gateway, w.store, w.source, incremental=incremental).manifest_key
    assert key
    return key


def raw_manifest(store: SnapshotStore, key: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(store.get_bytes(key))
    return data


def _append(store: SnapshotStore, entry: dict[str, Any], *records: Any) -> None:
    """Add records to a stored part and make its manifest entry true again (hash, size, count)."""
    body = gzip.decompress(store.get_bytes(entry["key"], entry.get("version_id")))
    body += b"".join(r.model_dump_json().encode() + b"\n" for r in records)
    packed = gzip.compress(body, mtime=0)
    sha, version = store.put_bytes(entry["key"], packed)
    entry.update(sha256=sha, bytes=len(packed), version_id=version, records=entry["records"] + len(records))


def forge(store: SnapshotStore, manifest_key: str, *, keep_signature: bool) -> None:
    """The attack of issue 13 on a full snapshot: a verified-e-mail user in `admins`, every
    hash, size, count and the state index recomputed, the manifest rewritten."""
    manifest = raw_manifest(store, manifest_key)
    user = UserRecord(
        username=FORGED,
        attributes={"email": "mallory@attacker.example", "email_verified": "true", "sub": "f" * 36},
        status="CONFIRMED",
        enabled=True,
    )
    member = MembershipRecord(group="admins", username=FORGED)

    def entry(kind: str) -> dict[str, Any]:
        found: dict[str, Any] = next(p for p in manifest["parts"] if p["kind"] == kind)
        return found

    _append(store, entry("users"), user)
    _append(store, entry("memberships"), member)
    _append(store, entry("state"), UserStateRecord(username=FORGED, digest=user_digest(user)), member)
    manifest["counts"]["users"] += 1
    manifest["counts"]["memberships"] += 1
    if not keep_signature:
        del manifest["signature"]
    store.put_json(manifest_key, manifest)
    # Forged well: without its signature check the validator would pass it.
    if not keep_signature:
        unchecked = SnapshotStore(store._s3, store.bucket, signing=ManifestSigning(None, allow_unsigned=True))
        assert validate_snapshot(unchecked, manifest_key, record=False).valid


def strip_signature(store: SnapshotStore, manifest_key: str) -> None:
    """A snapshot as made before signing existed: intact, with no signature."""
    manifest = raw_manifest(store, manifest_key)
    del manifest["signature"]
    store.put_json(manifest_key, manifest)


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out, err), out.getvalue(), err.getvalue()


REASON = {True: "mismatch", False: "missing"}


# ---------------------------------------------------------------------- the forgery


@pytest.mark.parametrize("keep_signature", [True, False], ids=["old-signature-kept", "signature-removed"])
def test_a_forged_snapshot_is_refused_by_every_validate(
    world: World, keep_signature: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a real snapshot, forged
    key = export(world)
    forge(world.store, key, keep_signature=keep_signature)
    reason = REASON[keep_signature]

    # Core: invalid, naming the reason
    report = validate_snapshot(world.store, key)
    assert not report.valid and report.signature_failure == reason
    assert f"signature {reason}" in report.failures[0].problem
    assert verdict_of(world.store, key) == "failed"

    # CLI: exit 1, the reason on stdout
    code, out, _ = cli(
        "validate", "--bucket", world.store.bucket, "--manifest", key, "--signing-key", world.key_arn
    )
    assert code == 1 and f"signature {reason}" in out and out.startswith("INVALID")

    # The validator Lambda: the verdict is failed and the invocation fails
    event = load_event("validator")
    event["detail"]["bucket"]["name"] = world.store.bucket
    event["detail"]["object"]["key"] = key
    with pytest.raises(SnapshotInvalidError):
        validator_handler(event, world.settings())
    assert verdict_of(world.store, key) == "failed"
    assert FORGED not in capsys.readouterr().out  # logs name no one


@pytest.mark.parametrize("keep_signature", [True, False], ids=["old-signature-kept", "signature-removed"])
def test_a_forged_snapshot_is_refused_by_every_restore_and_nothing_is_written(
    world: World, keep_signature: bool, lambda_context: Any
) -> None:
    key = export(world)
    forge(world.store, key, keep_signature=keep_signature)
    reason = REASON[keep_signature]
    before = world.objects()

    # Core
    with pytest.raises(RestoreRefusedError, match=f"signature {reason}") as refused:
        run_restore(world.gateway, world.store, key, world.target)
    assert isinstance(refused.value.__cause__, SignatureError) and refused.value.__cause__.reason == reason

    # CLI: non-zero, one line naming the reason
    code, _, err = cli(
        "restore",
        "--bucket",
        world.store.bucket,
        "--manifest",
        key,
        "--target-user-pool-id",
        world.target,
        "--signing-key",
        world.key_arn,
    )
    assert code != 0 and f"signature {reason}" in err and FORGED not in err

    # The restore Lambda
    event = {"manifest_key": key, "target_user_pool_id": world.target, "dry_run": False}
    with pytest.raises(RestoreRefusedError, match=f"signature {reason}"):
        restore_handler(event, lambda_context, world.settings())

    # Nothing written: no user in the target, no object (checkpoint, report, tag) in the bucket
    assert world.target_users() == []
    assert world.objects() == before
    assert world.store.get_tags(key) == {}


def test_a_passed_tag_on_a_forged_manifest_does_not_make_restore_accept_it(world: World) -> None:
    # Given a forged snapshot tagged passed, as anyone with s3:PutObjectTagging can
    key = export(world)
    forge(world.store, key, keep_signature=True)
    world.store.put_tags(key, {"validation": "passed"})

    # Then the restore verifies all the same, and refuses, even forced
    for options in (RestoreOptions(), RestoreOptions(force=True), RestoreOptions(dry_run=True)):
        with pytest.raises(RestoreRefusedError, match="signature mismatch"):
            run_restore(world.gateway, world.store, key, world.target, options=options)
    assert world.target_users() == []


# ---------------------------------------------------------------------- allow-unsigned


def test_allow_unsigned_accepts_an_intact_unsigned_snapshot_and_says_so(
    world: World, lambda_context: Any
) -> None:
    # Given a snapshot made before signing existed (intact, no signature)
    key = export(world)
    strip_signature(world.store, key)

    # Without the flag it is refused as missing
    assert validate_snapshot(world.store, key, record=False).signature_failure == "missing"
    with pytest.raises(RestoreRefusedError, match="signature missing"):
        run_restore(world.gateway, world.store, key, world.target)

    # With it, validated and restored, reported unsigned
    lenient = world.store_with(allow_unsigned=True)
    report = validate_snapshot(lenient, key, record=False)
    assert report.valid and report.signature == "unsigned"
    code, out, _ = cli(
        "validate",
        "--bucket",
        lenient.bucket,
        "--manifest",
        key,
        "--signing-key",
        world.key_arn,
        "--allow-unsigned",
    )
    assert code == 0 and "UNSIGNED" in out
    event = {
        "manifest_key": key,
        "target_user_pool_id": world.target,
        "dry_run": False,
        "allow_unsigned": True,
    }
    answer = restore_handler(event, lambda_context, world.settings())
    assert answer["status"] == "complete" and answer["signature"] == "unsigned"
    assert world.target_users() == ["alice", "bob"]


def test_allow_unsigned_still_refuses_a_wrong_signature(world: World) -> None:
    key = export(world)
    forge(world.store, key, keep_signature=True)
    lenient = world.store_with(allow_unsigned=True)

    assert validate_snapshot(lenient, key, record=False).signature_failure == "mismatch"
    with pytest.raises(RestoreRefusedError, match="signature mismatch"):
        run_restore(world.gateway, lenient, key, world.target, options=RestoreOptions(force=True))
    assert world.target_users() == []


def test_allow_unsigned_is_a_strict_boolean_in_the_event(world: World) -> None:
    key = export(world)
    with pytest.raises(UsageError, match="allow_unsigned"):
        parse_restore_event(
            {"manifest_key": key, "target_user_pool_id": world.target, "allow_unsigned": "yes"}
        )


# ---------------------------------------------------------------------- other keys


def test_a_manifest_signed_with_another_hmac_key_is_refused(world: World) -> None:
    # Given an intact snapshot re-signed with another HMAC key (one the attacker controls)
    key = export(world)
    other_key = create_signing_key(world.aws.kms(), "attacker")
    manifest = world.store.read_manifest(key)
    other = ManifestSigning(KmsMac(world.aws.kms(), other_key))
    world.store.put_json(key, other.sign(manifest))

    # Then it is refused as made with another key: the configured key decides, not the manifest
    report = validate_snapshot(world.store, key, record=False)
    assert report.signature_failure == "other_key"
    with pytest.raises(RestoreRefusedError, match="signature other_key"):
        run_restore(world.gateway, world.store, key, world.target)

    # And naming the configured key while carrying the other key's MAC is a mismatch
    resigned = raw_manifest(world.store, key)
    resigned["signature"]["key_id"] = world.key_arn
    world.store.put_json(key, resigned)
    assert validate_snapshot(world.store, key, record=False).signature_failure == "mismatch"
    with pytest.raises(RestoreRefusedError, match="signature mismatch"):
        run_restore(world.gateway, world.store, key, world.target)
    assert world.target_users() == []


@pytest.mark.parametrize(
    "signature",
    [
        "not-an-object",
        {"algorithm": "HMAC_SHA_256", "key_id": "k"},
        {"algorithm": "HMAC_SHA_512", "key_id": "k", "mac": "AAAA"},
        {"algorithm": "HMAC_SHA_256", "key_id": "k", "mac": "%%%"},
    ],
)
def test_a_malformed_signature_is_refused_as_malformed(world: World, signature: Any) -> None:
    key = export(world)
    manifest = raw_manifest(world.store, key)
    manifest["signature"] = signature
    world.store.put_json(key, manifest)

    assert validate_snapshot(world.store, key, record=False).signature_failure == "malformed"
    with pytest.raises(RestoreRefusedError, match="signature malformed"):
        run_restore(world.gateway, world.store, key, world.target)


def test_a_key_given_as_an_alias_verifies_too(world: World) -> None:
    # The CLI takes a key id, an ARN or an alias: KMS resolves the alias, the check is the same
    world.aws.kms().create_alias(AliasName="alias/manifests", TargetKeyId=world.key_arn)
    key = export(world)
    by_alias = world.store_with(key="alias/manifests")
    assert validate_snapshot(by_alias, key, record=False).signature == "signed"
    forge(world.store, key, keep_signature=True)
    assert validate_snapshot(by_alias, key, record=False).signature_failure == "mismatch"


# ---------------------------------------------------------------------- chains


def test_a_broken_link_in_the_middle_of_a_chain_is_refused(world: World) -> None:
    # Given full <- inc1 <- inc2, and inc1's manifest changed after it was signed
    full = export(world)
    world.aws.cognito().admin_disable_user(UserPoolId=world.source, Username="bob")
    inc1 = export(world, incremental=True)
    world.aws.cognito().admin_enable_user(UserPoolId=world.source, Username="bob")
    inc2 = export(world, incremental=True)
    assert world.store.read_manifest(inc2).base_manifest_key == inc1
    tampered = raw_manifest(world.store, inc1)
    tampered["tool_version"] = "0.0.0-forged"
    world.store.put_json(inc1, tampered)

    # Then validating inc2 fails on its base chain, whatever inc1's tag says
    world.store.put_tags(inc1, {"validation": "passed"})
    report = validate_snapshot(world.store, inc2, record=False)
    assert not report.valid and report.signature_failure == "mismatch"
    assert any(inc1 in (f.part or "") and "signature mismatch" in f.problem for f in report.failures)
    # restoring it is refused
    with pytest.raises(RestoreRefusedError, match="signature mismatch"):
        run_restore(world.gateway, world.store, inc2, world.target)
    assert world.target_users() == []
    # and the next incremental builds on neither: its base is the full snapshot
    world.store.put_tags(inc2, {"validation": "passed"})
    nxt = run_export(world.gateway, world.store, world.source, incremental=True)
    assert nxt.kind == "incremental" and nxt.base_manifest_key == full


def test_an_incremental_never_builds_on_an_unsigned_base(world: World) -> None:
    full = export(world)
    strip_signature(world.store, full)
    world.store.put_tags(full, {"validation": "passed"})

    result = run_export(world.gateway, world.store, world.source, incremental=True)

    assert result.kind == "full" and result.base_manifest_key is None


# ---------------------------------------------------------------------- no key


def test_an_export_without_a_signing_key_refuses_before_writing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COGNITO_BACKUP_SIGNING_KEY")
    unsigned = SnapshotStore(world.aws.s3(), world.store.bucket)
    with pytest.raises(UsageError, match="needs the signing key"):
        run_export(world.gateway, unsigned, world.source)
    code, _, err = cli("export", "--user-pool-id", world.source, "--bucket", world.store.bucket)
    assert code == 2 and "signing key" in err
    assert world.objects() == []


# ---------------------------------------------------------------------- bounded inputs


def _replace_part(w: World, key: str, kind: str, body: bytes) -> PartInfo:
    """Swap a part's bytes and sign the manifest that lists them (an export gone wrong)."""
    manifest = w.store.read_manifest(key)
    index = next(i for i, p in enumerate(manifest.parts) if p.kind == kind)
    part = manifest.parts[index]
    sha, version = w.store.put_bytes(part.key, body)
    manifest.parts[index] = part.model_copy(update={"sha256": sha, "bytes": len(body), "version_id": version})
    w.store.put_json(key, w.store.signing.sign(manifest))
    return manifest.parts[index]


def test_a_gzip_bomb_part_is_refused(world: World) -> None:
    key = export(world)
    bomb = gzip.compress((b" " * 1000 + b"\n") * 20_000, mtime=0)  # 20 MB from about 60 KB
    part = _replace_part(world, key, "users", bomb)

    with pytest.raises(SnapshotCorruptError, match="decompresses to more than"):
        list(world.store.iter_records(part))
    report = validate_snapshot(world.store, key, record=False)
    assert any("decompresses to more than" in f.problem for f in report.failures)


def test_an_overlong_line_in_a_part_is_refused(world: World) -> None:
    key = export(world)
    part = _replace_part(world, key, "users", gzip.compress(b"a" * (MAX_LINE_BYTES + 10), mtime=0))

    with pytest.raises(SnapshotCorruptError, match=f"longer than {MAX_LINE_BYTES} bytes"):
        list(world.store.iter_records(part))
    report = validate_snapshot(world.store, key, record=False)
    assert any(f"longer than {MAX_LINE_BYTES} bytes" in f.problem for f in report.failures)


def test_an_oversized_manifest_is_refused(world: World) -> None:
    big = export(world)
    world.store.put_bytes(big, b" " * (MAX_MANIFEST_BYTES + 1))

    with pytest.raises(SnapshotCorruptError, match=f"more than the {MAX_MANIFEST_BYTES} accepted"):
        world.store.read_manifest(big)
    report = validate_snapshot(world.store, big, record=False)
    assert not report.valid and "accepted" in report.failures[0].problem


def test_restore_event_lists_are_bounded(world: World) -> None:
    names = [f"user-{n}" for n in range(MAX_EVENT_NAMES)]
    for field in ("usernames", "groups"):
        event = {
            "manifest_key": "backups/p/full/2026/01/01/20260101T000000Z/manifest.json",
            "target_user_pool_id": world.target,
            field: names,
        }
        assert len(getattr(parse_restore_event(event), field)) == MAX_EVENT_NAMES
        with pytest.raises(UsageError, match=field):
            parse_restore_event({**event, field: [*names, "one-more"]})


def test_the_validator_refuses_a_manifest_outside_its_prefix(world: World) -> None:
    key = export(world)
    planted = "planted/" + key
    world.store.put_bytes(planted, world.store.get_bytes(key))
    event = load_event("validator")
    event["detail"]["bucket"]["name"] = world.store.bucket
    event["detail"]["object"]["key"] = planted
    with pytest.raises(UsageError, match="not under this deployment's prefix"):
        validator_handler(event, world.settings())
    assert world.store.get_tags(planted) == {}


# ---------------------------------------------------------------------- KMS faults


class KmsFirstAttemptsFail:
    """A before-send hook on a KMS client: the first attempts answer 500, throttle or reset."""

    def __init__(self, faults: list[str]) -> None:
        self.faults = faults
        self.injected: list[str] = []

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ConnectionClosedError

        from cognito_local.inprocess import _RawBody

        if not self.faults:
            return None
        fault = self.faults.pop(0)
        self.injected.append(fault)
        url = request.url
        request.url = "https://refused.invalid/"
        if fault == "reset":
            raise ConnectionClosedError(endpoint_url=url)
        code, status = ("KMSInternalException", 500) if fault == "500" else ("ThrottlingException", 400)
        body = json.dumps({"__type": code, "message": "try again"}).encode()
        return AWSResponse(url, status, {"Content-Type": "application/x-amz-json-1.1"}, _RawBody(body))  # type: ignore[arg-type]


def test_kms_transient_faults_are_retried_for_signing_and_verifying(world: World) -> None:
    # Given the KMS client the product builds (aws.py), answering badly at first
    kms = world.aws.kms()
    hook = KmsFirstAttemptsFail(["500", "throttle", "reset"])
    kms.meta.events.register_first("before-send.kms", hook)
    key = export(world)  # GenerateMac rides out the three faults

    # Then the manifest is signed, and verifies through the same faults
    assert hook.injected == ["500", "throttle", "reset"]
    hook.faults.extend(["throttle", "500"])
    assert validate_snapshot(world.store, key, record=False).signature == "signed"
    assert hook.injected[3:] == ["throttle", "500"]


def test_a_field_the_model_gains_later_does_not_break_older_signatures(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a snapshot signed today
    key = export(world)
    # When the manifest model later gains a field with a default (as schema changes will)
    from cognito_backup import models, store

    class LaterManifest(models.Manifest):
        added_later: int = 0

    monkeypatch.setattr(store, "Manifest", LaterManifest)
    # Then the older manifest still verifies (what is stored is checked, not the model's reading)
    assert world.store.read_manifest(key).snapshot_id
    assert validate_snapshot(world.store, key, record=False).valid
    # But a field added to what is stored is refused: the signature covers the whole document
    raw = raw_manifest(world.store, key)
    raw["added_later"] = 1
    world.store.put_json(key, raw)
    with pytest.raises(SignatureError) as refused:
        world.store.read_manifest(key)
    assert refused.value.reason == "mismatch"
