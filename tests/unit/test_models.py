"""The snapshot format's models: records round-trip, unknown fields are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from cognito_backup.digest import group_digest, user_digest
from cognito_backup.models import GroupRecord, Manifest, MembershipRecord, UserRecord, parse_record

REPO = Path(__file__).resolve().parents[2]


def test_records_round_trip_through_json_lines() -> None:
    user = UserRecord(
        username="zoë+1",
        attributes={"sub": "abc", "email": "z@example.com"},
        status="CONFIRMED",
        enabled=False,
    )
    for record in (
        user,
        GroupRecord(name="admins", precedence=1),
        MembershipRecord(group="admins", username="zoë+1"),
    ):
        assert parse_record(record.model_dump_json()) == record
    assert user.sub == "abc"


def test_a_record_with_an_unknown_type_or_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_record(json.dumps({"type": "password", "username": "a"}))
    with pytest.raises(ValidationError):
        parse_record(json.dumps({"type": "membership", "group": "g", "username": "a", "extra": 1}))


def test_manifest_has_the_contract_fields() -> None:
    required = set(Manifest.model_json_schema()["required"])
    assert {
        "schema_version",
        "snapshot_id",
        "kind",
        "user_pool_id",
        "region",
        "started_at",
        "finished_at",
        "counts",
        "parts",
    } <= required
    assert "base_manifest_key" in Manifest.model_fields


def test_digests_follow_content_not_modification_dates() -> None:
    base = UserRecord(username="a", attributes={"email": "a@x"}, status="CONFIRMED", enabled=True)
    later = base.model_copy(update={"modified": "2026-01-01T00:00:00Z"})
    disabled = base.model_copy(update={"enabled": False})
    assert user_digest(base) == user_digest(later)
    assert user_digest(base) != user_digest(disabled)
    assert group_digest(GroupRecord(name="g", precedence=1)) != group_digest(
        GroupRecord(name="g", precedence=2)
    )


def test_committed_json_schema_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_schema.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout
