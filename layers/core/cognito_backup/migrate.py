"""The user-migration trigger: users of a new pool keep the password of the pool they come from.

Cognito invokes the trigger of the new (target) pool when someone signs in, or asks for a
password reset, under a name the target does not know. The trigger answers with the user's
attributes and Cognito creates the user:

- `UserMigration_Authentication`: the password is checked against the source pool
  (AdminInitiateAuth, ADMIN_USER_PASSWORD_AUTH, through an app client without a secret); tokens
  or a challenge prove it. Answer: the attributes, `finalUserStatus` CONFIRMED (RESET_REQUIRED
  when the source itself demanded a new password), `messageAction` SUPPRESS.
- `UserMigration_ForgotPassword`: the attributes of the user in the source pool or, when that
  pool is gone, in its newest validated snapshot (streamed, never loaded whole); SUPPRESS.

A wrong password or an unknown user raises (Cognito then fails the sign-in). Nothing here
logs or raises a username, an attribute value or a password: errors name ids and codes.
This module knows nothing of Lambda: handlers.py parses the event and builds the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .chain import open_view
from .cognito import CognitoGateway
from .erasure import require_cleared
from .errors import PoolNotFoundError, SnapshotNotFoundError, UsageError, UserNotFoundError
from .models import UserRecord
from .observability import logger
from .store import SnapshotStore, layout_snapshot_id

AUTHENTICATION = "UserMigration_Authentication"
FORGOT_PASSWORD = "UserMigration_ForgotPassword"  # noqa: S105 - a trigger source, not a password
TriggerSource = Literal["UserMigration_Authentication", "UserMigration_ForgotPassword"]

# Attributes a migration answer must not carry: Cognito gives every user a new `sub`,
# `identities` (links to federated providers) cannot be written, and `cognito:*` names are
# Cognito's own.
NOT_MIGRATED = frozenset({"sub", "identities"})
RESERVED_PREFIX = "cognito:"
# Statuses that do not migrate: a federated user has no password here, and comes back through
# its provider; the others cannot be proven (a pool keeps a user's status, not the password).
NOT_MIGRATABLE_STATUSES = frozenset({"EXTERNAL_PROVIDER", "ARCHIVED", "COMPROMISED"})
# A challenge that makes the user set a new password: the migrated user must do the same.
NEW_PASSWORD_CHALLENGES = frozenset({"NEW_PASSWORD_REQUIRED"})
# Aliases Cognito resolves only when verified (preferred_username needs no verification).
VERIFIED_ALIASES = {"email": "email_verified", "phone_number": "phone_number_verified"}


# --------------------------------------------------------------------------- the event


class MigrationRequest(BaseModel):
    """`request` of the trigger event; `password` is absent in the forgot-password flow."""

    model_config = ConfigDict(extra="allow")

    password: str | None = None
    validationData: dict[str, str] | None = None  # Cognito's field names, as in the event
    clientMetadata: dict[str, str] | None = None


class MigrationEvent(BaseModel):
    """The user-migration trigger event (Cognito's common trigger fields, then its own)."""

    model_config = ConfigDict(extra="allow")

    version: str
    triggerSource: TriggerSource
    region: str
    userPoolId: str = Field(min_length=1)
    userName: str = Field(min_length=1)
    callerContext: dict[str, Any] = Field(default_factory=dict)
    request: MigrationRequest
    response: dict[str, Any] | None = None


class MigrationResponse(BaseModel):
    """What the trigger answers in the event's `response` (Cognito's names)."""

    userAttributes: dict[str, str]
    finalUserStatus: Literal["CONFIRMED", "RESET_REQUIRED"] | None = None
    messageAction: Literal["SUPPRESS"] = "SUPPRESS"


@dataclass(frozen=True)
class MigrationSource:
    """Where users come from: MIGRATION_SOURCE_USER_POOL_ID / MIGRATION_SOURCE_CLIENT_ID, and the
    backup bucket's prefix (BACKUP_PREFIX) for the snapshot fallback."""

    user_pool_id: str
    client_id: str | None
    backup_prefix: str

    @property
    def region(self) -> str:
        """The source pool's region: a pool id starts with it (eu-west-1_AbC123)."""
        return self.user_pool_id.split("_", 1)[0]

    @classmethod
    def from_env(cls, environ: Mapping[str, str], backup_prefix: str) -> MigrationSource:
        pool = environ.get("MIGRATION_SOURCE_USER_POOL_ID", "").strip()
        if not pool:
            raise UsageError("MIGRATION_SOURCE_USER_POOL_ID is not set")
        client = environ.get("MIGRATION_SOURCE_CLIENT_ID", "").strip() or None
        return cls(pool, client, backup_prefix)


@dataclass(frozen=True)
class Migrated:
    """A migration answer, and where it came from (for logs and metrics: no personal data)."""

    response: MigrationResponse
    origin: Literal["source_pool", "snapshot"]
    challenge: str | None = None
    snapshot_id: str | None = None


# --------------------------------------------------------------------------- sign-in names


@dataclass(frozen=True)
class SignInSettings:
    """How a pool resolves the name typed at sign-in (its creation-only settings)."""

    username_attributes: tuple[str, ...] = ()
    alias_attributes: tuple[str, ...] = ()
    case_sensitive: bool = True

    @classmethod
    def of(cls, user_pool: Mapping[str, Any]) -> SignInSettings:
        """From DescribeUserPool's `UserPool` (or a snapshot's configuration record of it).
        A pool without UsernameConfiguration is case sensitive (pools made before 2020)."""
        config = user_pool.get("UsernameConfiguration") or {}
        return cls(
            username_attributes=tuple(user_pool.get("UsernameAttributes") or ()),
            alias_attributes=tuple(user_pool.get("AliasAttributes") or ()),
            case_sensitive=bool(config.get("CaseSensitive", True)),
        )

    def same_name(self, a: str, b: str) -> bool:
        return a == b if self.case_sensitive else a.casefold() == b.casefold()

    def signs_in_as(self, user: UserRecord, entered: str) -> bool:
        """Whether `entered` names this user: its username, or a sign-in attribute of its own
        (UsernameAttributes), or a verified alias (AliasAttributes), as Cognito resolves them."""
        if self.same_name(entered, user.username):
            return True
        for name in self.username_attributes:
            if _same_value(name, user.attributes.get(name), entered):
                return True
        for name in self.alias_attributes:
            verified = VERIFIED_ALIASES.get(name)
            if verified and user.attributes.get(verified) != "true":
                continue
            if _same_value(name, user.attributes.get(name), entered, self.case_sensitive):
                return True
        return False


def _same_value(name: str, value: str | None, entered: str, case_sensitive: bool = True) -> bool:
    if value is None:
        return False
    if name == "email" or (name == "preferred_username" and not case_sensitive):
        return value.casefold() == entered.casefold()
    return value == entered


def migrated_attributes(user: UserRecord, entered: str, signin: SignInSettings) -> dict[str, str]:
    """The attributes the target pool is given: every one the user has, but those it cannot take.

    When the name typed was an alias of the user (AliasAttributes: a verified e-mail or phone,
    or preferred_username), Cognito requires the answer to name the user's real username in a
    `username` attribute; otherwise `username` must be left out (a pool with
    UsernameAttributes generates it). This assumes the target pool has the source's sign-in
    settings, as one created by `restore --create-target-pool` has.
    """
    attrs = {
        name: value
        for name, value in user.attributes.items()
        if name not in NOT_MIGRATED and not name.startswith(RESERVED_PREFIX)
    }
    if not signin.same_name(entered, user.username) and signin.alias_attributes:
        attrs["username"] = user.username
    return attrs


def _check_migratable(user: UserRecord) -> None:
    if not user.enabled:
        # A disabled user would come back enabled: the trigger cannot disable.
        raise UserNotFoundError("the user is disabled in the source pool: not migrated")
    if user.status in NOT_MIGRATABLE_STATUSES:
        raise UserNotFoundError(f"a user in status {user.status} is not migrated")


# --------------------------------------------------------------------------- the source pool


class SourcePool:
    """The source pool through the gateway; what does not change (the client's secret, the
    sign-in settings) is read once per Lambda container, not per sign-in."""

    _facts: dict[tuple[str, str], Any] = {}  # a per-container cache, on purpose

    def __init__(self, gateway: CognitoGateway, source: MigrationSource) -> None:
        self.gateway = gateway
        self.source = source

    def _cached(self, what: str, compute: Any) -> Any:
        key = (self.source.user_pool_id, what)
        if key not in self._facts:
            self._facts[key] = compute()
        return self._facts[key]

    @classmethod
    def forget_cache(cls) -> None:
        cls._facts.clear()

    def signin(self) -> SignInSettings:
        pool_id = self.source.user_pool_id
        settings: SignInSettings = self._cached(
            "signin", lambda: SignInSettings.of(self.gateway.describe_pool(pool_id))
        )
        return settings

    def client_id(self) -> str:
        client = self.source.client_id
        if not client:
            raise UsageError("MIGRATION_SOURCE_CLIENT_ID is not set: the password cannot be checked")
        has_secret = self._cached(
            f"secret:{client}", lambda: self.gateway.client_has_secret(self.source.user_pool_id, client)
        )
        if has_secret:
            raise UsageError(
                f"app client {client} of the source pool has a secret; the migration trigger needs a "
                "client without one (with ALLOW_ADMIN_USER_PASSWORD_AUTH)"
            )
        return client

    def user(self, entered: str) -> UserRecord:
        """AdminGetUser (which also resolves aliases); PoolNotFoundError when the pool is gone."""
        user = self.gateway.get_user(self.source.user_pool_id, entered)
        if user is None:
            raise UserNotFoundError("no such user in the source pool")
        return user

    def answer_for(self, user: UserRecord, entered: str) -> dict[str, str]:
        # The sign-in settings matter only when the name typed is not the username itself.
        signin = SignInSettings() if user.username == entered else self.signin()
        if user.username != entered and not signin.signs_in_as(user, entered):
            # AdminGetUser also takes a sub: a user cannot sign in with that.
            raise UserNotFoundError("the name entered is not a sign-in name of the source user")
        return migrated_attributes(user, entered, signin)


def authenticate(gateway: CognitoGateway, source: MigrationSource, event: MigrationEvent) -> Migrated:
    """UserMigration_Authentication: prove the password on the source pool, then answer."""
    if not event.request.password:
        raise UsageError("malformed migration event: request.password: a sign-in carries the password")
    pool = SourcePool(gateway, source)
    challenge = gateway.check_password(
        source.user_pool_id, pool.client_id(), event.userName, event.request.password
    )
    user = pool.user(event.userName)
    _check_migratable(user)
    status: Literal["CONFIRMED", "RESET_REQUIRED"] = (
        "RESET_REQUIRED" if challenge in NEW_PASSWORD_CHALLENGES else "CONFIRMED"
    )
    response = MigrationResponse(userAttributes=pool.answer_for(user, event.userName), finalUserStatus=status)
    return Migrated(response, "source_pool", challenge=challenge)


def forgot_password(
    gateway: CognitoGateway, store: SnapshotStore, source: MigrationSource, event: MigrationEvent
) -> Migrated:
    """UserMigration_ForgotPassword: the user from the source pool, or from its newest
    validated snapshot when the pool no longer exists."""
    pool = SourcePool(gateway, source)
    try:
        user = pool.user(event.userName)
    except PoolNotFoundError:
        logger.info(
            "source pool gone: answering from its newest snapshot", extra={"pool": source.user_pool_id}
        )
        return _from_snapshot(store, source, event.userName)
    _check_migratable(user)
    return Migrated(MigrationResponse(userAttributes=pool.answer_for(user, event.userName)), "source_pool")


# --------------------------------------------------------------------------- the snapshot fallback


def newest_validated_snapshot(store: SnapshotStore, prefix: str, pool_id: str) -> str:
    """The manifest key of the pool's newest snapshot that the validator passed.

    Only a passed verdict will do: the attributes answered decide where Cognito sends the
    reset code, so a snapshot not (yet) validated, or failed, is passed over.
    """
    from .validate import verdict_of

    for key in store.manifest_keys(prefix, pool_id):
        if verdict_of(store, key) == "passed":
            return key
    raise SnapshotNotFoundError(f"no validated snapshot of {pool_id} under {prefix!r}")


def find_user(users: Iterable[UserRecord], entered: str, signin: SignInSettings) -> UserRecord:
    """The user `entered` names, read one record at a time (never the whole pool in memory)."""
    for user in users:
        if signin.signs_in_as(user, entered):
            return user
    raise UserNotFoundError("no such user in the newest snapshot of the source pool")


def _from_snapshot(store: SnapshotStore, source: MigrationSource, entered: str) -> Migrated:
    key = newest_validated_snapshot(store, source.backup_prefix, source.user_pool_id)
    view = open_view(store, key)
    # A snapshot not yet cleared of an erasure may hold a forgotten person: not used.
    require_cleared(
        store, source.backup_prefix, source.user_pool_id, [(link.key, link.manifest) for link in view.chain]
    )
    config = view.config()
    signin = SignInSettings.of(config.user_pool) if config is not None else SignInSettings()
    user = find_user(view.users(), entered, signin)
    _check_migratable(user)
    response = MigrationResponse(userAttributes=migrated_attributes(user, entered, signin))
    return Migrated(response, "snapshot", snapshot_id=layout_snapshot_id(key))


def migrate_user(
    gateway: CognitoGateway, store: SnapshotStore, source: MigrationSource, event: MigrationEvent
) -> Migrated:
    if event.triggerSource == AUTHENTICATION:
        return authenticate(gateway, source, event)
    return forgot_password(gateway, store, source, event)
