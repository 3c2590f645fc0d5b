"""The restore's pure rules: settings checks, status mapping, attributes, passwords, models."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from conftest import load_event
from pydantic import ValidationError

from cognito_backup.errors import UsageError
from cognito_backup.handlers import parse_restore_event
from cognito_backup.models import GroupRecord, UserRecord
from cognito_backup.restore_models import (
    RestoreEvent,
    RestoreOptions,
    RestoreOutcomes,
    RestoreReport,
    UserNote,
)
from cognito_backup.restore_rules import (
    NO_CONTACT,
    PASSWORD_SYMBOLS,
    Identity,
    UsernameScheme,
    add_custom_attribute_entry,
    attribute_changes,
    custom_attribute_plan,
    has_verified_contact,
    identities,
    not_restorable,
    password_plan,
    random_password,
    same_group,
    username_setting_differences,
    writable_attributes,
)


def schema(*attrs: tuple[str, str, bool]) -> dict[str, Any]:
    standard = [{"Name": "email", "AttributeDataType": "String", "Mutable": True}]
    return {
        "SchemaAttributes": standard
        + [{"Name": f"custom:{n}", "AttributeDataType": t, "Mutable": m} for n, t, m in attrs]
    }


def user(status: str = "CONFIRMED", enabled: bool = True, **attrs: str) -> UserRecord:
    return UserRecord(username="zoë", attributes={"sub": "s-1", **attrs}, status=status, enabled=enabled)


# ------------------------------------------------------------------ pool settings


def test_username_settings_that_differ_are_named() -> None:
    assert username_setting_differences({}, {"UsernameConfiguration": {"CaseSensitive": True}}) == []
    diffs = username_setting_differences(
        {"UsernameAttributes": ["email"]},
        {"AliasAttributes": ["email"], "UsernameConfiguration": {"CaseSensitive": False}},
    )
    assert len(diffs) == 3
    assert any(
        d.startswith("UsernameAttributes is ['email'] in the snapshot, [] in the target") for d in diffs
    )
    assert any("AliasAttributes" in d for d in diffs)
    assert any("CaseSensitive" in d for d in diffs)


def test_custom_attributes_missing_are_added_and_conflicts_are_named() -> None:
    source = schema(("tenant", "String", False), ("level", "Number", True), ("team", "String", True))
    plan = custom_attribute_plan(source, schema(("tenant", "String", False)))
    assert plan.names == ["custom:level", "custom:team"] and not plan.conflicts
    assert plan.to_add[0] == {
        "Name": "level",
        "AttributeDataType": "Number",
        "Mutable": True,
        "DeveloperOnlyAttribute": False,
    }

    conflicting = custom_attribute_plan(source, schema(("tenant", "String", True), ("level", "String", True)))
    assert any(
        "custom:tenant is immutable in the snapshot, mutable in the target" in c
        for c in conflicting.conflicts
    )
    assert any(
        "custom:level is a Number in the snapshot, a String in the target" in c for c in conflicting.conflicts
    )


def test_more_than_fifty_custom_attributes_is_a_conflict() -> None:
    target = schema(*[(f"t{i}", "String", True) for i in range(49)])
    plan = custom_attribute_plan(schema(("a", "String", True), ("b", "String", True)), target)
    assert any("more than Cognito's 50" in c for c in plan.conflicts)


def test_custom_attribute_entries_keep_constraints_and_developer_only() -> None:
    entry = add_custom_attribute_entry(
        "dev:custom:secret",
        {"AttributeDataType": "String", "Mutable": False, "StringAttributeConstraints": {"MaxLength": "20"}},
    )
    assert entry["Name"] == "secret" and entry["DeveloperOnlyAttribute"] is True
    assert entry["StringAttributeConstraints"] == {"MaxLength": "20"} and entry["Mutable"] is False


def test_groups_compare_on_their_restorable_fields() -> None:
    a = GroupRecord(name="g", description=None, precedence=1)
    assert same_group(a, GroupRecord(name="g", description="", precedence=1))
    assert not same_group(a, GroupRecord(name="g", precedence=2))
    assert not same_group(a, GroupRecord(name="g", precedence=1, role_arn="arn:aws:iam::1:role/x"))


# ------------------------------------------------------------------ users


def test_writable_attributes_never_include_sub_or_identities() -> None:
    u = user(email="z@example.com", identities="[]", **{"custom:tenant": "t", "cognito:mfa_enabled": "x"})
    assert writable_attributes(u) == {"email": "z@example.com", "custom:tenant": "t"}


def test_login_and_keys_follow_the_username_scheme() -> None:
    u = user(email="Zoe@Example.com", phone_number="+15550000001")
    assert UsernameScheme().login(u) == "zoë"
    email = UsernameScheme(("email",), case_sensitive=False)
    assert email.login(u) == "Zoe@Example.com"
    assert email.keys(u) == {"zoë", "zoe@example.com"}
    assert UsernameScheme(("phone_number",)).login(u) == "+15550000001"
    assert UsernameScheme(("email",)).login(user()) is None


def test_identities_are_parsed_leniently() -> None:
    raw = json.dumps([{"providerName": "Google", "userId": "123", "providerType": "Google"}, {"bad": 1}])
    assert identities(user(identities=raw)) == [Identity("Google", "123")]
    assert identities(user(identities="not json")) == []
    assert identities(user()) == []


def test_status_mapping_of_the_default_strategy() -> None:
    confirmed = password_plan(user("CONFIRMED", email="a@x.io", email_verified="true"), "random-confirmed")
    assert (
        confirmed.set_random_password and confirmed.end_status == "CONFIRMED" and not confirmed.admin_reasons
    )

    no_contact = password_plan(user("CONFIRMED", email="a@x.io", email_verified="false"), "random-confirmed")
    assert no_contact.set_random_password and no_contact.admin_reasons == (NO_CONTACT,)

    reset = password_plan(
        user("RESET_REQUIRED", phone_number="+1", phone_number_verified="true"), "random-confirmed"
    )
    assert reset.end_status == "CONFIRMED" and "was RESET_REQUIRED" in reset.admin_reasons[0]

    invited = password_plan(user("FORCE_CHANGE_PASSWORD", email="a@x.io"), "random-confirmed")
    assert invited.end_status == "FORCE_CHANGE_PASSWORD" and "RESEND" in invited.admin_reasons[0]

    assert not_restorable(user("EXTERNAL_PROVIDER")) == "federated"
    assert not_restorable(user("UNCONFIRMED")) == "unconfirmed"
    assert not_restorable(user("COMPROMISED")) is None


def test_status_mapping_of_the_invite_strategy() -> None:
    both = password_plan(user("CONFIRMED", email="a@x.io", phone_number="+1"), "invite")
    assert both.invite_mediums == ("EMAIL", "SMS") and both.end_status == "FORCE_CHANGE_PASSWORD"
    disabled = password_plan(user("CONFIRMED", enabled=False, email="a@x.io"), "invite")
    assert disabled.invite_mediums == () and "disabled" in disabled.admin_reasons[0]
    nothing = password_plan(user("CONFIRMED"), "invite")
    assert nothing.invite_mediums == () and "no email or phone" in nothing.admin_reasons[0]


def test_verified_contact_needs_the_value_and_its_flag() -> None:
    assert has_verified_contact({"email": "a@x.io", "email_verified": "true"})
    assert not has_verified_contact({"email_verified": "true"})
    assert not has_verified_contact({"phone_number": "+1", "phone_number_verified": "false"})


def test_random_passwords_meet_any_policy_and_differ() -> None:
    passwords = {random_password(8) for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) >= 48
        assert any(c in string.ascii_uppercase for c in password)
        assert any(c in string.ascii_lowercase for c in password)
        assert any(c in string.digits for c in password)
        assert any(c in PASSWORD_SYMBOLS for c in password)
    assert len(random_password(99)) == 99


def test_overwrite_changes_only_mutable_attributes_and_sets_verified_flags_with_them() -> None:
    desired = {"email": "new@x.io", "email_verified": "true", "custom:tenant": "a", "name": "N"}
    current = {"email": "old@x.io", "email_verified": "true", "custom:tenant": "b", "locale": "fr"}
    changes, removals, immutable = attribute_changes(desired, current, {"custom:tenant": False})
    assert changes == {"email": "new@x.io", "email_verified": "true", "name": "N"}
    assert removals == ["locale"] and immutable == ["custom:tenant"]


# ------------------------------------------------------------------ models


def test_the_event_file_parses_with_the_event_model() -> None:
    event = RestoreEvent.model_validate(load_event("restore"))
    assert event.options().usernames is None and event.options().conflict_policy == "skip"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"manifest_key": "a/manifest.json", "target_user_pool_id": "us-east-1_X", "dryrun": True}, "dryrun"),
        ({"manifest_key": "a/manifest.json", "target_user_pool_id": "not a pool"}, "target_user_pool_id"),
        ({"target_user_pool_id": "us-east-1_X"}, "manifest_key"),
        ({"manifest_key": "a/b.json", "target_user_pool_id": "us-east-1_X"}, "manifest_key"),
        (
            {
                "manifest_key": "a/manifest.json",
                "target_user_pool_id": "us-east-1_X",
                "conflict_policy": "merge",
            },
            "conflict_policy",
        ),
        (
            {"manifest_key": "a/manifest.json", "target_user_pool_id": "us-east-1_X", "usernames": [""]},
            "usernames",
        ),
    ],
)
def test_a_malformed_event_is_refused_naming_the_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError, match=f"malformed restore event: {field}"):
        parse_restore_event(event)


def test_options_refuse_unknown_fields_and_empty_usernames() -> None:
    with pytest.raises(ValidationError):
        RestoreOptions(policy="skip")
    with pytest.raises(ValidationError):
        RestoreOptions(usernames=("a", ""))
    assert RestoreOptions(usernames=("a", "a")).usernames == ("a",)
    assert RestoreOptions(usernames=()).usernames is None
    assert RestoreOptions(parallelism=2).same_work(RestoreOptions(chunk_size=3))
    assert not RestoreOptions(conflict_policy="fail").same_work(RestoreOptions())


def test_outcomes_merge_and_report_summaries() -> None:
    a = RestoreOutcomes(sub_map={"1": "2"}, skipped=[UserNote(username="u", reason="r")])
    a.merge(RestoreOutcomes(sub_map={"3": "4"}))
    assert a.sub_map == {"1": "2", "3": "4"} and not a.empty() and RestoreOutcomes().empty()
    report = RestoreReport(
        status="complete",
        manifest_key="k",
        snapshot_id="s",
        source_user_pool_id="p1",
        target_user_pool_id="p2",
        conflict_policy="skip",
        password_strategy="invite",
        started_at="2026-11-21T23:00:00Z",
    )
    assert report.summary_lines()[0].endswith(": complete")
