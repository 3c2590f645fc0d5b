"""The snapshot format v1 and every other contract, as pydantic models.

Nothing here knows about boto3: these are the records written to (and read from)
snapshot parts, the manifest, checkpoints, events and reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

SnapshotKind = Literal["full", "incremental"]
PartKind = Literal["config", "groups", "memberships", "users", "changes", "state"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MfaOption(_Record):
    delivery_medium: str | None = None
    attribute_name: str | None = None


class UserRecord(_Record):
    """One user as ListUsers shows it: every attribute, `sub` included."""

    type: Literal["user"] = "user"
    username: str
    attributes: dict[str, str]
    status: str
    enabled: bool
    created: datetime | None = None
    modified: datetime | None = None
    mfa_options: list[MfaOption] = Field(default_factory=list)

    @property
    def sub(self) -> str | None:
        return self.attributes.get("sub")


class GroupRecord(_Record):
    type: Literal["group"] = "group"
    name: str
    description: str | None = None
    precedence: int | None = None
    role_arn: str | None = None
    created: datetime | None = None
    modified: datetime | None = None


class MembershipRecord(_Record):
    type: Literal["membership"] = "membership"
    group: str
    username: str


class PoolConfigRecord(_Record):
    """The pool's configuration, as the API describes it, minus every secret.

    The dictionaries keep the Cognito API's own field names so that a restore (or a
    person) can feed them back to CreateUserPool / CreateUserPoolClient etc.
    """

    type: Literal["pool_config"] = "pool_config"
    user_pool: dict[str, Any]
    mfa_config: dict[str, Any] = Field(default_factory=dict)
    app_clients: list[dict[str, Any]] = Field(default_factory=list)
    identity_providers: list[dict[str, Any]] = Field(default_factory=list)
    resource_servers: list[dict[str, Any]] = Field(default_factory=list)
    domain: dict[str, Any] | None = None
    # The hosted UI's customisation: the pool-wide one (ClientId "ALL") and each client's own.
    ui_customizations: list[dict[str, Any]] = Field(default_factory=list)
    # Managed login branding, by the (source) app client id it styles.
    managed_login_brandings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    log_delivery: dict[str, Any] | None = None
    # Threat protection (Plus feature plan only): pool-wide (ClientId "ALL") and each client's own.
    risk_configurations: list[dict[str, Any]] = Field(default_factory=list)


# Incremental-only records: what disappeared since the base snapshot.
class UserDeletedRecord(_Record):
    type: Literal["user_deleted"] = "user_deleted"
    username: str


class GroupDeletedRecord(_Record):
    type: Literal["group_deleted"] = "group_deleted"
    name: str


class MembershipRemovedRecord(_Record):
    type: Literal["membership_removed"] = "membership_removed"
    group: str
    username: str


# The compact state index written with every snapshot, so that the next incremental
# compares against it instead of reading the whole chain.
class UserStateRecord(_Record):
    type: Literal["state_user"] = "state_user"
    username: str
    digest: str


class GroupStateRecord(_Record):
    type: Literal["state_group"] = "state_group"
    name: str
    digest: str


Record = Annotated[
    UserRecord
    | GroupRecord
    | MembershipRecord
    | PoolConfigRecord
    | UserDeletedRecord
    | GroupDeletedRecord
    | MembershipRemovedRecord
    | UserStateRecord
    | GroupStateRecord,
    Field(discriminator="type"),
]
RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)


def parse_record(line: bytes | str) -> Record:
    return RECORD_ADAPTER.validate_json(line)


class PartInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str = Field(description="Full S3 key of the part")
    records: int = Field(ge=0)
    bytes: int = Field(ge=0, description="Size of the stored (gzipped) object")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the stored object")
    kind: PartKind | None = Field(default=None, description="What the part holds")
    version_id: str | None = Field(default=None, description="S3 version written, if versioned")


class Counts(BaseModel):
    model_config = ConfigDict(extra="allow")

    users: int = Field(default=0, ge=0)
    groups: int = Field(default=0, ge=0)
    memberships: int = Field(default=0, ge=0)
    users_deleted: int = Field(default=0, ge=0)
    groups_deleted: int = Field(default=0, ge=0)
    memberships_removed: int = Field(default=0, ge=0)


class ManifestSignature(BaseModel):
    """A KMS HMAC over the SHA-256 digest of the manifest's canonical JSON (signing.py).

    `key_id` says which key made it, for people; a reader verifies with the key it is
    configured with, never with the one named here.
    """

    model_config = ConfigDict(extra="forbid")

    algorithm: str = Field(description="KMS MacAlgorithm; HMAC_SHA_256")
    key_id: str = Field(min_length=1, description="ARN of the KMS HMAC key that made the MAC")
    mac: str = Field(min_length=1, description="The MAC, base64")


class Manifest(BaseModel):
    """manifest.json: written last; a snapshot without it does not exist."""

    model_config = ConfigDict(extra="allow")

    schema_version: int
    snapshot_id: str
    kind: SnapshotKind
    user_pool_id: str
    region: str
    started_at: datetime
    finished_at: datetime
    base_manifest_key: str | None = None
    counts: Counts
    parts: list[PartInfo]
    tool_version: str | None = None
    erasures_applied: list[str] = Field(
        default_factory=list,
        description="Ids of the erasures (ledger entries under <prefix>/<pool>/erasures/) this snapshot "
        "is known to be clear of: applied by the export that wrote it, or by `forget` that rewrote it",
    )
    signature: ManifestSignature | None = Field(
        default=None, description="KMS HMAC of the rest of the manifest; absent only before signing existed"
    )


# ---------------------------------------------------------------- checkpoints


class ExportCheckpoint(BaseModel):
    """Where an unfinished export stands; kept in S3 between invocations."""

    model_config = ConfigDict(extra="forbid")

    snapshot_id: str
    kind: SnapshotKind
    user_pool_id: str
    region: str
    prefix: str
    started_at: datetime
    base_manifest_key: str | None = None
    phase: Literal["config", "groups", "users"] = "config"
    token: str | None = Field(default=None, description="ListGroups position in the groups phase")
    group_names: list[str] = Field(default_factory=list)
    next_cursor: int = Field(default=0, description="Index of the next listing cursor to start")
    active: dict[str, str | None] = Field(
        default_factory=dict, description="Started listing cursors and the token of their next page"
    )
    part_seq: int = 0
    parts: list[PartInfo] = Field(default_factory=list)
    working_parts: list[PartInfo] = Field(
        default_factory=list, description="Parts kept for the run only (deleted when it finishes)"
    )
    counts: Counts = Field(default_factory=Counts)
    invocations: int = 0
    erasures: list[str] = Field(
        default_factory=list, description="Erasure ledger entries in force when the snapshot was started"
    )
