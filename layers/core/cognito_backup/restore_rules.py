"""The restore's rules, as pure functions: no boto3, no S3, easy to test on their own.

- which creation-only pool settings must match, and which custom attributes must be added;
- which attributes of a backed-up user can be written, and under which username;
- what each source status becomes in the target (the status mapping of docs/restore.md),
  and what an administrator must then do for the user;
- the random password of the default strategy.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .models import GroupRecord, UserRecord
from .restore_models import PasswordStrategy

MAX_CUSTOM_ATTRIBUTES = 50  # per pool (Cognito quota)
READ_ONLY_ATTRIBUTES = frozenset({"sub", "identities"})
VERIFIED_FLAGS = {"email": "email_verified", "phone_number": "phone_number_verified"}
CUSTOM_PREFIXES = ("custom:", "dev:custom:")

# --------------------------------------------------------------------------- pool settings


def username_settings(pool: Mapping[str, Any]) -> dict[str, Any]:
    """The creation-only settings that decide what a username means.

    A pool described without UsernameConfiguration predates it and is case sensitive.
    """
    config = pool.get("UsernameConfiguration") or {}
    return {
        "UsernameAttributes": sorted(pool.get("UsernameAttributes") or []),
        "AliasAttributes": sorted(pool.get("AliasAttributes") or []),
        "UsernameConfiguration.CaseSensitive": bool(config.get("CaseSensitive", True)),
    }


def username_setting_differences(source: Mapping[str, Any], target: Mapping[str, Any]) -> list[str]:
    src, dst = username_settings(source), username_settings(target)
    return [
        f"{name} is {src[name]!r} in the snapshot, {dst[name]!r} in the target"
        for name in src
        if src[name] != dst[name]
    ]


def custom_attributes(pool: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The pool's custom attributes by full name ("custom:x", "dev:custom:x")."""
    return {
        str(a["Name"]): a
        for a in pool.get("SchemaAttributes") or []
        if str(a.get("Name", "")).startswith(CUSTOM_PREFIXES)
    }


def _data_type(attr: Mapping[str, Any]) -> str:
    return str(attr.get("AttributeDataType") or "String")


def _mutable(attr: Mapping[str, Any]) -> bool:
    return bool(attr.get("Mutable", True))


@dataclass(frozen=True)
class AttributePlan:
    to_add: list[dict[str, Any]]  # AddCustomAttributes entries
    names: list[str]  # their full names
    conflicts: list[str]  # why the target cannot take the snapshot's users


def custom_attribute_plan(source: Mapping[str, Any], target: Mapping[str, Any]) -> AttributePlan:
    """What the target lacks of the snapshot's custom attributes, and what conflicts."""
    have, want = custom_attributes(target), custom_attributes(source)
    conflicts: list[str] = []
    to_add: list[dict[str, Any]] = []
    names: list[str] = []
    for name, attr in sorted(want.items()):
        existing = have.get(name)
        if existing is None:
            to_add.append(add_custom_attribute_entry(name, attr))
            names.append(name)
            continue
        if _data_type(existing) != _data_type(attr):
            conflicts.append(
                f"{name} is a {_data_type(attr)} in the snapshot, a {_data_type(existing)} in the target"
            )
        if _mutable(existing) != _mutable(attr):
            conflicts.append(
                f"{name} is {'mutable' if _mutable(attr) else 'immutable'} in the snapshot, "
                f"{'mutable' if _mutable(existing) else 'immutable'} in the target"
            )
    if len(have) + len(to_add) > MAX_CUSTOM_ATTRIBUTES:
        conflicts.append(
            f"the target has {len(have)} custom attributes and needs {len(to_add)} more: "
            f"more than Cognito's {MAX_CUSTOM_ATTRIBUTES}"
        )
    return AttributePlan(to_add, names, conflicts)


def add_custom_attribute_entry(name: str, attr: Mapping[str, Any]) -> dict[str, Any]:
    """An AddCustomAttributes entry for a DescribeUserPool schema attribute."""
    entry: dict[str, Any] = {
        "Name": name.removeprefix("dev:").removeprefix("custom:"),
        "AttributeDataType": _data_type(attr),
        "Mutable": _mutable(attr),
        "DeveloperOnlyAttribute": name.startswith("dev:") or bool(attr.get("DeveloperOnlyAttribute", False)),
    }
    for key in ("NumberAttributeConstraints", "StringAttributeConstraints"):
        value = {k: v for k, v in (attr.get(key) or {}).items() if v not in (None, "")}
        if value:
            entry[key] = value
    return entry


def mutability(pool: Mapping[str, Any]) -> dict[str, bool]:
    """Attribute name -> mutable, for every attribute in the pool's schema."""
    return {str(a["Name"]): _mutable(a) for a in pool.get("SchemaAttributes") or [] if "Name" in a}


def password_min_length(pool: Mapping[str, Any]) -> int:
    policy = (pool.get("Policies") or {}).get("PasswordPolicy") or {}
    return int(policy.get("MinimumLength") or 8)


def same_group(a: GroupRecord, b: GroupRecord) -> bool:
    """Same description, precedence and role (an unset description is an empty one)."""
    return (a.description or "", a.precedence, a.role_arn or None) == (
        b.description or "",
        b.precedence,
        b.role_arn or None,
    )


# --------------------------------------------------------------------------- users


@dataclass(frozen=True)
class UsernameScheme:
    """How users are named in the target: by username, or by email / phone number."""

    username_attributes: tuple[str, ...] = ()
    case_sensitive: bool = True

    @classmethod
    def of(cls, pool: Mapping[str, Any]) -> UsernameScheme:
        settings = username_settings(pool)
        return cls(tuple(settings["UsernameAttributes"]), settings["UsernameConfiguration.CaseSensitive"])

    def login(self, user: UserRecord) -> str | None:
        """The name to create the user under: its username, or (in an email/phone-as-username
        pool, where usernames are generated) its email or phone number."""
        if not self.username_attributes:
            return user.username
        for attribute in ("email", "phone_number"):
            if attribute in self.username_attributes and user.attributes.get(attribute):
                return user.attributes[attribute]
        return None

    def keys(self, user: UserRecord) -> set[str]:
        """Every name that identifies the user (to match a subset or find it in the target)."""
        names = {user.username}
        for attribute in self.username_attributes:
            if user.attributes.get(attribute):
                names.add(user.attributes[attribute])
        return {self.fold(n) for n in names}

    def fold(self, name: str) -> str:
        return name if self.case_sensitive else name.lower()


def writable_attributes(user: UserRecord) -> dict[str, str]:
    """Every attribute AdminCreateUser may set: all but `sub`, `identities` and `cognito:*`."""
    return {
        k: v
        for k, v in user.attributes.items()
        if k not in READ_ONLY_ATTRIBUTES and not k.startswith("cognito:")
    }


def has_verified_contact(attributes: Mapping[str, str]) -> bool:
    return any(attributes.get(a) and attributes.get(flag) == "true" for a, flag in VERIFIED_FLAGS.items())


@dataclass(frozen=True)
class Identity:
    provider: str
    user_id: str


def identities(user: UserRecord) -> list[Identity]:
    """The providers a native user is linked to (its `identities` attribute, JSON)."""
    raw = user.attributes.get("identities")
    if not raw:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("providerName") and item.get("userId"):
            out.append(Identity(str(item["providerName"]), str(item["userId"])))
    return out


# --------------------------------------------------------------------------- status mapping

SkipReason = Literal["federated", "unconfirmed"]

FEDERATED_REASON = (
    "federated user (EXTERNAL_PROVIDER): Cognito cannot create it; it comes back at its next "
    "sign-in through its identity provider (its group memberships must then be re-added)"
)
UNCONFIRMED_REASON = (
    "UNCONFIRMED (never confirmed its sign-up): not restored, so that the person can sign up "
    "again with the same name"
)


def not_restorable(user: UserRecord) -> SkipReason | None:
    if user.status == "EXTERNAL_PROVIDER":
        return "federated"
    if user.status == "UNCONFIRMED":
        return "unconfirmed"
    return None


@dataclass(frozen=True)
class PasswordPlan:
    """What happens to a new user's password, and what an administrator must do."""

    set_random_password: bool  # AdminSetUserPassword Permanent=true -> CONFIRMED
    invite_mediums: tuple[str, ...]  # non-empty: AdminCreateUser sends an invitation
    admin_reasons: tuple[str, ...]

    @property
    def end_status(self) -> str:
        return "CONFIRMED" if self.set_random_password else "FORCE_CHANGE_PASSWORD"


NO_CONTACT = (
    "no verified email or phone: cannot use forgot-password; set a password (AdminSetUserPassword) "
    "or verify a contact for the user"
)


def password_plan(user: UserRecord, strategy: PasswordStrategy) -> PasswordPlan:
    """The status mapping of docs/restore.md, for one user that will be created."""
    attrs = user.attributes
    if strategy == "invite":
        mediums = tuple(m for m, a in (("EMAIL", "email"), ("SMS", "phone_number")) if attrs.get(a))
        if not user.enabled:
            return PasswordPlan(
                False, (), ("disabled: no invitation sent; resend one when enabling the user",)
            )
        if not mediums:
            return PasswordPlan(
                False, (), ("no email or phone: no invitation could be sent; set a password",)
            )
        return PasswordPlan(False, mediums, ())
    if user.status == "FORCE_CHANGE_PASSWORD":
        return PasswordPlan(
            False,
            (),
            (
                "was FORCE_CHANGE_PASSWORD (invited, never signed in): the temporary password cannot be "
                "restored; resend the invitation (AdminCreateUser MessageAction=RESEND)",
            ),
        )
    reasons: list[str] = []
    if user.status != "CONFIRMED":
        reasons.append(
            f"was {user.status}: now CONFIRMED with a random password (no message sent); "
            "AdminResetUserPassword would force a reset and send a code"
        )
    if not has_verified_contact(attrs):
        reasons.append(NO_CONTACT)
    return PasswordPlan(True, (), tuple(reasons))


PASSWORD_SYMBOLS = "^$*.[]{}()?!@#%&/,><:;|_~=+-"  # noqa: S105 - an alphabet


def random_password(min_length: int = 8) -> str:
    """An unguessable password that meets any Cognito password policy; never stored."""
    length = max(48, min(min_length, 256))
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, PASSWORD_SYMBOLS)
    alphabet = "".join(classes)
    chars = [secrets.choice(c) for c in classes]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def attribute_changes(
    desired: Mapping[str, str],
    current: Mapping[str, str],
    mutable: Mapping[str, bool],
    keep: Iterable[str] = (),
) -> tuple[dict[str, str], list[str], list[str]]:
    """For `overwrite`: (attributes to set, attributes to delete, immutable ones that differ)."""
    keep = set(keep) | READ_ONLY_ATTRIBUTES | set(VERIFIED_FLAGS.values())
    changes = {k: v for k, v in desired.items() if current.get(k) != v}
    immutable = sorted(k for k in changes if not mutable.get(k, True))
    for name in immutable:
        del changes[name]
    for attribute, flag in VERIFIED_FLAGS.items():
        # Set the verified flag in the same call: no verification message when it is true.
        if attribute in changes and flag in desired:
            changes[flag] = desired[flag]
    removals = sorted(
        k
        for k in current
        if k not in desired and k not in keep and mutable.get(k, True) and not k.startswith("cognito:")
    )
    return changes, removals, immutable
