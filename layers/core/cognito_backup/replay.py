"""Replaying an incremental's change records: the one dispatch of each kind of change.

An incremental snapshot's `changes` parts hold what differs from its base: users and groups
written whole (new or changed), memberships added, and tombstones for users, groups and
memberships that disappeared. Three readers replay them onto state of their own: the
point-in-time view of a restore (`chain`), the incremental export's digest index
(`incremental`), and the validator, which checks them (`validate`). Each is a `ChangeSink`;
`replay` says which of its methods a record calls, so a new kind of change is added here once.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from .models import (
    GroupDeletedRecord,
    GroupRecord,
    MembershipRecord,
    MembershipRemovedRecord,
    Record,
    UserDeletedRecord,
    UserRecord,
)

R = TypeVar("R", covariant=True)

# The record types a `changes` part may hold.
CHANGE_TYPES = (
    UserRecord,
    UserDeletedRecord,
    GroupRecord,
    GroupDeletedRecord,
    MembershipRecord,
    MembershipRemovedRecord,
)


class ChangeSink(Protocol[R]):
    """State that change records are replayed onto; each method answers what its caller
    wants back (nothing, or the validator's problem with the record)."""

    def put_user(self, record: UserRecord) -> R: ...
    def drop_user(self, record: UserDeletedRecord) -> R: ...
    def put_group(self, record: GroupRecord) -> R: ...
    def drop_group(self, record: GroupDeletedRecord) -> R: ...
    def add_member(self, record: MembershipRecord) -> R: ...
    def remove_member(self, record: MembershipRemovedRecord) -> R: ...


def is_change(record: Record) -> bool:
    return isinstance(record, CHANGE_TYPES)


def replay(record: Record, sink: ChangeSink[R]) -> R:
    """Apply one change record to `sink`; ValueError for a record that is not a change
    (callers decide whether that is corruption or a record of another part)."""
    match record:
        case UserRecord():
            return sink.put_user(record)
        case UserDeletedRecord():
            return sink.drop_user(record)
        case GroupRecord():
            return sink.put_group(record)
        case GroupDeletedRecord():
            return sink.drop_group(record)
        case MembershipRecord():
            return sink.add_member(record)
        case MembershipRemovedRecord():
            return sink.remove_member(record)
        case _:
            raise ValueError(f"not a change record: {record.type!r}")
