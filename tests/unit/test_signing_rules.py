"""The canonical form that is signed, and the refusals that need no KMS call."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cognito_backup.errors import SignatureError, UsageError
from cognito_backup.models import Manifest
from cognito_backup.signing import ManifestSigning, canonical_json, key_region, key_uuid, manifest_digest

ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def manifest_doc() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "snapshot_id": "20261121T230000Z",
        "kind": "full",
        "user_pool_id": "us-east-1_EXAMPLE01",
        "region": "us-east-1",
        "started_at": "2026-11-21T23:00:00Z",
        "finished_at": "2026-11-21T23:01:00Z",
        "base_manifest_key": None,
        "counts": {"users": 2, "groups": 1, "memberships": 1},
        "parts": [
            {
                "key": "backups/p/users-00001.jsonl.gz",
                "records": 2,
                "bytes": 10,
                "sha256": "a" * 64,
                "kind": "users",
            }
        ],
        "tool_version": "1.0.0",
        "note": "Zoë",  # non-ASCII is signed as UTF-8, not escaped
    }


def test_key_order_and_whitespace_do_not_change_the_digest() -> None:
    doc = manifest_doc()
    shuffled = dict(reversed(list(doc.items())))
    spaced = json.loads(json.dumps(doc, indent=4, sort_keys=False))
    assert canonical_json(doc) == canonical_json(shuffled) == canonical_json(spaced)
    assert manifest_digest(doc) == manifest_digest(shuffled)
    # and the model, parsed from any layout of the same JSON, gives the same bytes
    one = Manifest.model_validate_json(json.dumps(doc))
    other = Manifest.model_validate_json(json.dumps(shuffled, indent=2))
    assert manifest_digest(one) == manifest_digest(other)
    assert canonical_json(doc).decode("utf-8").count("Zoë") == 1
    assert b" " not in canonical_json({"a": [1, 2], "b": {"c": "d"}})


def test_the_signature_itself_is_not_signed() -> None:
    doc = manifest_doc()
    signed = {**doc, "signature": {"algorithm": "HMAC_SHA_256", "key_id": ARN, "mac": "AAAA"}}
    assert manifest_digest(doc) == manifest_digest(signed)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["counts"].update(users=3),
        lambda d: d["parts"][0].update(sha256="b" * 64),
        lambda d: d["parts"][0].update(bytes=11),
        lambda d: d.update(base_manifest_key="backups/x/manifest.json"),
        lambda d: d.update(user_pool_id="us-east-1_EXAMPLE02"),
        lambda d: d.update(note="Zoe"),
        lambda d: d["parts"].append(dict(d["parts"][0], key="backups/p/users-00002.jsonl.gz")),
    ],
)
def test_any_field_change_changes_the_digest(change: Any) -> None:
    doc = manifest_doc()
    changed = json.loads(json.dumps(doc))
    change(changed)
    assert manifest_digest(doc) != manifest_digest(changed)
    assert len(manifest_digest(doc)) == 32  # the message KMS gets: far below GenerateMac's 4,096 bytes


def test_key_ids_are_compared_by_the_key_they_name() -> None:
    assert key_uuid(ARN) == "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert key_uuid("1234abcd-12ab-34cd-56ef-1234567890ab") == "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert key_uuid("alias/manifests") is None
    assert key_uuid("arn:aws:kms:us-east-1:123456789012:alias/manifests") is None


def test_a_missing_signature_is_refused_unless_unsigned_is_allowed() -> None:
    manifest = Manifest.model_validate(manifest_doc())
    with pytest.raises(SignatureError) as refused:
        ManifestSigning(None).check("k/manifest.json", manifest)
    assert refused.value.reason == "missing" and "--allow-unsigned" in str(refused.value)
    assert ManifestSigning(None, allow_unsigned=True).check("k/manifest.json", manifest) == "unsigned"


@pytest.mark.parametrize(
    "signature",
    [
        {"algorithm": "HMAC_SHA_512", "key_id": ARN, "mac": "A" * 44},
        {"algorithm": "HMAC_SHA_256", "key_id": ARN, "mac": "not base64!"},
        {"algorithm": "HMAC_SHA_256", "key_id": ARN, "mac": "AAAA"},  # 3 bytes, not 32
    ],
)
def test_a_malformed_signature_is_refused_even_when_unsigned_is_allowed(signature: dict[str, str]) -> None:
    manifest = Manifest.model_validate({**manifest_doc(), "signature": signature})
    with pytest.raises(SignatureError) as refused:
        ManifestSigning(None, allow_unsigned=True).check("k/manifest.json", manifest)
    assert refused.value.reason == "malformed"


def test_without_a_key_nothing_is_signed_and_a_signed_manifest_cannot_be_judged() -> None:
    manifest = Manifest.model_validate(
        {**manifest_doc(), "signature": {"algorithm": "HMAC_SHA_256", "key_id": ARN, "mac": "A" * 43 + "="}}
    )
    with pytest.raises(UsageError, match="needs the signing key"):
        ManifestSigning(None).sign(manifest)
    with pytest.raises(UsageError, match="no signing key is configured"):
        ManifestSigning(None, allow_unsigned=True).check("k/manifest.json", manifest)


def test_signature_reasons_are_the_four_named() -> None:
    with pytest.raises(ValueError, match="unknown"):
        SignatureError("k", "wrong")
    assert SignatureError("k", "other_key", "x").reason == "other_key"


def test_a_key_arn_is_called_in_its_own_region() -> None:
    assert key_region(ARN) == "us-east-1"
    assert key_region("arn:aws:kms:eu-west-1:123456789012:alias/manifests") == "eu-west-1"
    assert (
        key_region("alias/manifests") is None and key_region("1234abcd-12ab-34cd-56ef-1234567890ab") is None
    )
