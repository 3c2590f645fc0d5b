"""The migration trigger's sign-in-name rules (pure logic; moto resolves no aliases).

Cognito's rule for the answer's `username` attribute: when the name typed is an alias of the
user (AliasAttributes), the answer must name the real username; otherwise `username` must
match the request or be left out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cognito_backup.errors import UserNotFoundError
from cognito_backup.migrate import SignInSettings, find_user, migrated_attributes
from cognito_backup.models import UserRecord


def user(name: str = "jane", **attrs: str) -> UserRecord:
    base = {"sub": "0f0e-sub", "email": "Jane@Example.com", "email_verified": "true"}
    return UserRecord(username=name, attributes={**base, **attrs}, status="CONFIRMED", enabled=True)


ALIASED = SignInSettings.of({"AliasAttributes": ["email", "preferred_username"]})
BY_EMAIL = SignInSettings.of({"UsernameAttributes": ["email"]})
INSENSITIVE = SignInSettings.of({"UsernameConfiguration": {"CaseSensitive": False}})


def test_the_settings_come_from_the_pool_description() -> None:
    assert ALIASED.alias_attributes == ("email", "preferred_username") and ALIASED.case_sensitive
    assert BY_EMAIL.username_attributes == ("email",)
    assert not INSENSITIVE.case_sensitive
    assert SignInSettings.of({}) == SignInSettings()


def test_sub_identities_and_cognito_names_are_never_answered() -> None:
    u = user(identities="[]", **{"cognito:mfa_enabled": "false", "custom:tenant": "t1"})
    assert migrated_attributes(u, "jane", SignInSettings()) == {
        "email": "Jane@Example.com",
        "email_verified": "true",
        "custom:tenant": "t1",
    }


def test_an_alias_typed_makes_the_answer_name_the_real_username() -> None:
    u = user()
    assert ALIASED.signs_in_as(u, "jane@example.com")  # e-mail compared without case
    assert migrated_attributes(u, "jane@example.com", ALIASED)["username"] == "jane"
    assert "username" not in migrated_attributes(u, "jane", ALIASED)


def test_an_unverified_email_is_no_alias_but_preferred_username_needs_no_verification() -> None:
    u = user(email_verified="false", preferred_username="jd")
    assert not ALIASED.signs_in_as(u, "jane@example.com")
    assert ALIASED.signs_in_as(u, "jd")
    assert not ALIASED.signs_in_as(u, "JD")  # a case-sensitive pool


def test_email_as_username_leaves_username_out() -> None:
    u = user(name="6a1f-generated")
    assert BY_EMAIL.signs_in_as(u, "jane@example.com")
    assert "username" not in migrated_attributes(u, "jane@example.com", BY_EMAIL)


def test_case_insensitive_usernames_match_whatever_the_case() -> None:
    assert INSENSITIVE.signs_in_as(user(), "JANE")
    assert not SignInSettings().signs_in_as(user(), "JANE")
    assert "username" not in migrated_attributes(user(), "JANE", INSENSITIVE)


def test_find_user_reads_until_the_match_and_refuses_an_unknown_name() -> None:
    read: list[str] = []

    def users() -> Iterator[UserRecord]:
        for name in ("a", "b", "jane", "c"):
            read.append(name)
            yield user(name=name, email=f"{name}@example.com")

    assert find_user(users(), "jane", SignInSettings()).username == "jane"
    assert read == ["a", "b", "jane"]  # streamed: stops at the match
    with pytest.raises(UserNotFoundError) as unknown:
        find_user(users(), "nobody", SignInSettings())
    assert "nobody" not in str(unknown.value)


def test_the_password_check_is_paced_as_user_authentication_here_and_in_the_local_cognito() -> None:
    from cognito_backup.pacing import DEFAULT_QUOTAS, OPERATION_CATEGORY
    from cognito_local import strict

    assert OPERATION_CATEGORY["admin_initiate_auth"] == "UserAuthentication"
    assert DEFAULT_QUOTAS["UserAuthentication"] == 120  # Cognito's default, adjustable
    assert strict.OPERATION_CATEGORY["AdminInitiateAuth"] == "UserAuthentication"
    assert strict.DEFAULT_QUOTAS["UserAuthentication"] == 120
