"""Deterministic sample pools, and a comparable snapshot of a pool read through the API.

`seed_pool` writes straight into moto's backend when the pool lives in this process (both
`mock_aws()` and `LocalAws`), which seeds 20,000 users in seconds; for a pool on another
process's server it falls back to the API, backing off on throttling.
"""

from __future__ import annotations

import random
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_cognito_idp.type_defs import AttributeTypeTypeDef, SchemaAttributeTypeTypeDef

T = TypeVar("T")

PAGE = 60
ROLE_ARN = "arn:aws:iam::123456789012:role/group-role-{}"
SEED_PASSWORD = "Seeded-Passw0rd!"  # local sample users only
GIVEN = (
    "José",
    "Zoë",
    "李",
    "Anna",
    "Ólafur",
    "Mohammed",
    "Søren",
    "Aiko",
    "Łukasz",
    "Chloé",
    "Thảo",
    "Fatima",
    "Björn",
    "Priya",
    "Renée",
    "Jürgen",
    "Siobhán",
    "Kenji",
    "Ana",
    "David",
)
FAMILY = (
    "García",
    "Müller",
    "王",
    "O'Brien",
    "Smith",
    "Nakamura",
    "Kowalski",
    "Åberg",
    "Dubois",
    "Rossi",
    "Øvergaard",
    "Ivanov",
    "Nguyễn",
    "Núñez",
    "Lee",
    "Brown",
)
GROUP_NAMES = ("admins", "editors", "viewers", "support", "billing")
LOCALES = ("en", "es", "de", "fr", "zh", "ja", "pt-BR")
DEFAULT_CUSTOM = (("tenant", "String", True), ("employee_id", "String", False), ("level", "Number", True))


@dataclass(frozen=True)
class SeedSummary:
    """What `seed_pool` created."""

    users: int
    disabled: int
    unverified_email: int
    with_phone: int
    groups: int
    memberships: int
    big_group: str | None
    big_group_members: int
    direct: bool  # True: written into moto's backend; False: through the API
    confirmed: int = 0  # users left CONFIRMED (as after a first sign-in); the rest FORCE_CHANGE_PASSWORD


class UserState(TypedDict):
    attributes: dict[str, str]
    enabled: bool
    status: str


class GroupState(TypedDict):
    description: str | None
    precedence: int | None
    role_arn: str | None


class PoolState(TypedDict):
    users: dict[str, UserState]
    groups: dict[str, GroupState]
    memberships: set[tuple[str, str]]


@dataclass
class _User:
    username: str
    attributes: list[dict[str, str]]
    enabled: bool
    groups: list[str] = field(default_factory=list)
    confirmed: bool = False


@dataclass(frozen=True)
class _Group:
    name: str
    description: str
    precedence: int
    role_arn: str


def create_pool(
    cognito_client: CognitoIdentityProviderClient,
    name: str,
    *,
    username_attributes: Sequence[str] | None = None,
    custom_attributes: Sequence[tuple[str, str, bool]] = DEFAULT_CUSTOM,
    auto_verified: Sequence[str] = ("email",),
    settings: Mapping[str, Any] | None = None,
) -> str:
    """Create a pool with custom attributes given as (name, type, mutable), and any other
    CreateUserPool `settings` (a feature plan, add-ons); return its id."""
    schema: list[SchemaAttributeTypeTypeDef] = [
        {"Name": n, "AttributeDataType": t, "Mutable": m, "Required": False}  # type: ignore[typeddict-item]
        for n, t, m in custom_attributes
    ]
    kwargs: dict[str, Any] = {"PoolName": name, "Schema": schema}
    if username_attributes:
        kwargs["UsernameAttributes"] = list(username_attributes)
    if auto_verified:
        kwargs["AutoVerifiedAttributes"] = list(auto_verified)
    kwargs.update(settings or {})
    return cognito_client.create_user_pool(**kwargs)["UserPool"]["Id"]


def seed_pool(
    cognito_client: CognitoIdentityProviderClient,
    pool_id: str,
    *,
    users: int = 200,
    groups: int = 5,
    seed: int = 42,
    big_group_members: int = 0,
    confirmed_share: float = 0.0,
) -> SeedSummary:
    """Fill a pool with deterministic users, groups and memberships.

    `confirmed_share` of the users are CONFIRMED, as users who have signed in once; the
    others stay FORCE_CHANGE_PASSWORD, as AdminCreateUser leaves them.
    """
    local = _moto_pool(cognito_client, pool_id)
    if local is not None:
        username_attributes = list(local.extended_config.get("UsernameAttributes") or [])
        customs = [(n, a.data_type) for n, a in local.schema_attributes.items() if n.startswith("custom:")]
    else:
        pool = cognito_client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        username_attributes = list(pool.get("UsernameAttributes", []))
        customs = [
            (a["Name"], a.get("AttributeDataType", "String"))
            for a in pool.get("SchemaAttributes", [])
            if a.get("Name", "").startswith("custom:")
        ]
    rng = random.Random(seed)
    group_specs = [
        _Group(
            GROUP_NAMES[n] if n < len(GROUP_NAMES) else f"group-{n}",
            f"Équipe {n}: seeded group" if n % 2 else f"Seeded group {n}",
            n,
            ROLE_ARN.format(n),
        )
        for n in range(groups)
    ]
    specs = [_user(rng, i, username_attributes, customs) for i in range(users)]
    names = [g.name for g in group_specs]
    for spec in specs:
        spec.groups = rng.sample(names, min(len(names), rng.choice((0, 0, 1, 1, 1, 2))))
    big = min(big_group_members, users) if names else 0
    for spec in specs[:big]:
        if names[0] not in spec.groups:
            spec.groups.append(names[0])
    confirm = random.Random(seed + 1)  # its own stream: the data above stays as it was
    for spec in specs:
        spec.confirmed = confirm.random() < confirmed_share
    if local is not None:
        _write_to_moto(local, pool_id, specs, group_specs, bool(username_attributes))
    else:
        _write_through_api(cognito_client, pool_id, specs, group_specs)

    def has(spec: _User, name: str, value: str | None = None) -> bool:
        return any(a["Name"] == name and value in (None, a["Value"]) for a in spec.attributes)

    return SeedSummary(
        users=len(specs),
        disabled=sum(not s.enabled for s in specs),
        unverified_email=sum(has(s, "email_verified", "false") for s in specs),
        with_phone=sum(has(s, "phone_number") for s in specs),
        groups=len(group_specs),
        memberships=sum(len(s.groups) for s in specs),
        big_group=names[0] if big else None,
        big_group_members=big,
        direct=local is not None,
        confirmed=sum(s.confirmed for s in specs),
    )


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalnum()) or "user"


def _user(
    rng: random.Random, i: int, username_attributes: Sequence[str], customs: Sequence[tuple[str, str]]
) -> _User:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    g, f = _slug(given), _slug(family)
    email = f"{g}.{f}.{i}@example.com"
    phone_as_username = "phone_number" in username_attributes and "email" not in username_attributes
    phone = f"+1555{i:07d}" if phone_as_username or rng.random() < 0.3 else None
    attrs = {
        "email": email,
        "email_verified": "false" if rng.random() < 0.15 else "true",
        "given_name": given,
        "family_name": family,
        "name": f"{given} {family}",
    }
    if phone:
        attrs["phone_number"] = phone
        attrs["phone_number_verified"] = "true" if rng.random() < 0.5 else "false"
    if rng.random() < 0.4:
        attrs["locale"] = rng.choice(LOCALES)
    for name, data_type in customs:
        if rng.random() < 0.9:
            attrs[name] = _custom_value(rng, i, name, data_type)
    if phone_as_username and phone:
        username = phone
    elif username_attributes:
        username = email
    else:
        username = (
            f"{g}.{f}{i}",
            f"{g}+{f}{i}",
            f"{g}.{f}{i}@example.org",
            f"{g}{i}",
            f"{given.lower()}_{i}",
        )[i % 5]
    enabled = rng.random() >= 0.1
    return _User(username, [{"Name": k, "Value": v} for k, v in attrs.items()], enabled)


def _custom_value(rng: random.Random, i: int, name: str, data_type: str) -> str:
    short = name.removeprefix("custom:")
    if short == "tenant":
        return f"tenant-{rng.randint(1, 5)}"
    if short == "employee_id":
        return f"E{i:06d}"
    if data_type == "Number":
        return str(rng.randint(1, 10))
    if data_type == "Boolean":
        return rng.choice(("true", "false"))
    if data_type == "DateTime":
        return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00Z"
    return f"{short}-{i}"


def _moto_pool(client: CognitoIdentityProviderClient, pool_id: str) -> Any:
    """The pool in this process's moto backend, or None (pool on another server, or no moto)."""
    try:
        from moto.backends import get_backend
    except ImportError:
        return None
    region = client.meta.region_name
    for regions in list(get_backend("cognito-idp").values()):
        backend = regions.get(region)  # dict.get: moto's __getitem__ would create the backend
        if backend is not None and pool_id in backend.user_pools:
            return backend.user_pools[pool_id]
    return None


def _write_to_moto(
    pool: Any, pool_id: str, specs: list[_User], groups: list[_Group], by_attribute: bool
) -> None:
    # Mirrors moto's admin_create_user / create_group / admin_add_user_to_group / admin_disable_user
    # without their per-call scans (moto looks users up by a linear search in
    # UsernameAttributes pools, which makes 20,000 API-shaped creations quadratic).
    from moto.cognitoidp.models import CognitoIdpGroup, CognitoIdpUser, UserStatus

    taken = set(pool.users)
    if by_attribute:
        taken |= {
            v
            for u in pool.users.values()
            for k, v in u.attribute_lookup.items()
            if k in ("email", "phone_number")
        }
    clash = next((s.username for s in specs if s.username in taken), None)
    if clash is not None or any(g.name in pool.groups for g in groups):
        raise ValueError(f"pool {pool_id} already holds seeded data (e.g. {clash!r})")
    made = {}
    for g in groups:
        made[g.name] = pool.groups[g.name] = CognitoIdpGroup(
            pool_id, g.name, g.description, g.role_arn, g.precedence
        )
    for spec in specs:
        user = CognitoIdpUser(
            pool_id,
            None if by_attribute else spec.username,
            None,
            UserStatus.CONFIRMED if spec.confirmed else UserStatus.FORCE_CHANGE_PASSWORD,
            list(spec.attributes),
        )
        user.enabled = spec.enabled
        pool.users[user.username] = user
        for name in spec.groups:
            made[name].users.add(user)
            user.groups.add(made[name])


def _write_through_api(
    client: CognitoIdentityProviderClient, pool_id: str, specs: list[_User], groups: list[_Group]
) -> None:
    for g in groups:
        _call(
            client.create_group,
            UserPoolId=pool_id,
            GroupName=g.name,
            Description=g.description,
            Precedence=g.precedence,
            RoleArn=g.role_arn,
        )
    for spec in specs:
        attributes: list[AttributeTypeTypeDef] = [
            {"Name": a["Name"], "Value": a["Value"]} for a in spec.attributes
        ]
        created = _call(
            client.admin_create_user,
            UserPoolId=pool_id,
            Username=spec.username,
            MessageAction="SUPPRESS",
            UserAttributes=attributes,
        )
        username = created["User"]["Username"]
        if spec.confirmed:
            _call(
                client.admin_set_user_password,
                UserPoolId=pool_id,
                Username=username,
                Password=SEED_PASSWORD,
                Permanent=True,
            )
        if not spec.enabled:
            _call(client.admin_disable_user, UserPoolId=pool_id, Username=username)
        for name in spec.groups:
            _call(client.admin_add_user_to_group, UserPoolId=pool_id, Username=username, GroupName=name)


def _call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Call, backing off while Cognito answers TooManyRequestsException."""
    for attempt in range(30):
        try:
            return fn(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TooManyRequestsException" or attempt == 29:
                raise
            time.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")


def pool_state(cognito_client: CognitoIdentityProviderClient, pool_id: str) -> PoolState:
    """A normalized snapshot of a pool, read through the API in pages of at most 60.

    Users are keyed by username or, in pools whose usernames are generated (UsernameAttributes),
    by their email / phone number, so that two pools with the same people compare equal.
    """
    c = cognito_client
    pool = _call(c.describe_user_pool, UserPoolId=pool_id)["UserPool"]
    username_attributes = pool.get("UsernameAttributes", [])
    key_attribute: str | None = None
    if username_attributes:
        key_attribute = "email" if "email" in username_attributes else username_attributes[0]
    users: dict[str, UserState] = {}
    keys: dict[str, str] = {}
    token: str | None = None
    while True:
        page = _call(
            c.list_users, UserPoolId=pool_id, Limit=PAGE, **({"PaginationToken": token} if token else {})
        )
        for u in page.get("Users", []):
            attributes = {
                a["Name"]: a.get("Value", "") for a in u.get("Attributes", []) if a["Name"] != "sub"
            }
            key = attributes.get(key_attribute, u["Username"]) if key_attribute else u["Username"]
            keys[u["Username"]] = key
            users[key] = {
                "attributes": attributes,
                "enabled": u.get("Enabled", True),
                "status": u.get("UserStatus", ""),
            }
        token = page.get("PaginationToken")
        if not token:
            break
    groups: dict[str, GroupState] = {}
    token = None
    while True:
        gpage = _call(
            c.list_groups, UserPoolId=pool_id, Limit=PAGE, **({"NextToken": token} if token else {})
        )
        for g in gpage.get("Groups", []):
            groups[g["GroupName"]] = {
                "description": g.get("Description"),
                "precedence": g.get("Precedence"),
                "role_arn": g.get("RoleArn"),
            }
        token = gpage.get("NextToken")
        if not token:
            break
    memberships: set[tuple[str, str]] = set()
    for name in groups:
        token = None
        while True:
            mpage = _call(
                c.list_users_in_group,
                UserPoolId=pool_id,
                GroupName=name,
                Limit=PAGE,
                **({"NextToken": token} if token else {}),
            )
            memberships |= {(name, keys.get(u["Username"], u["Username"])) for u in mpage.get("Users", [])}
            token = mpage.get("NextToken")
            if not token:
                break
    return {"users": users, "groups": groups, "memberships": memberships}
