"""The snapshot's memberships index: one read of the part for every window of a restore's pass."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from cognito_backup.models import MembershipRecord, UserRecord
from cognito_backup.restore.memberships import MembershipIndex
from cognito_backup.restore.preflight import RestoreContext
from cognito_backup.restore_models import RestoreOptions


def member(user: str, group: str) -> MembershipRecord:
    return MembershipRecord(username=user, group=group)


def test_groups_by_user_in_the_snapshots_order() -> None:
    index = MembershipIndex(
        [member("ann", "b"), member("bob", "a"), member("ann", "a"), member("cy", "c"), member("ann", "c")]
    )
    try:
        assert index.of(["ann", "bob", "nobody"]) == {"ann": ["b", "a", "c"], "bob": ["a"]}
        assert index.of([]) == {}
    finally:
        index.close()


def test_more_names_than_sqlite_binds_at_once() -> None:
    index = MembershipIndex(member(f"u{i:05d}", f"g{i % 3}") for i in range(12_000))
    try:
        found = index.of(f"u{i:05d}" for i in range(0, 12_000, 2))
        assert len(found) == 6_000 and found["u00004"] == ["g1"] and found["u11996"] == ["g2"]
    finally:
        index.close()


def test_close_removes_the_file() -> None:
    index = MembershipIndex([member("ann", "a")])
    directory = index._dir.name
    assert os.path.isdir(directory)
    index.close()
    assert not os.path.exists(directory)


class _View:
    """A point-in-time view that counts how often its memberships are read."""

    def __init__(self, users: int) -> None:
        self.names = [f"user-{i:04d}" for i in range(users)]
        self.reads = 0

    def memberships(self) -> Iterator[MembershipRecord]:
        self.reads += 1
        for i, name in enumerate(self.names):
            yield member(name, "even" if i % 2 == 0 else "odd")
            if i % 5 == 0:
                yield member(name, "fives")


def test_a_pass_in_windows_reads_the_memberships_once() -> None:
    # Given a snapshot of 2,500 users, restored in windows of 1,000
    view = _View(2_500)
    fields: dict[str, Any] = {name: None for name in RestoreContext.__dataclass_fields__}
    fields.update(view=view, options=RestoreOptions(window_size=1_000))
    fields.pop("_subset")
    ctx = RestoreContext(**fields)
    users = (
        UserRecord(username=n, status="CONFIRMED", enabled=True, attributes={"sub": n}) for n in view.names
    )
    # When the pass goes through every window
    windows = list(ctx.windows(users))
    # Then each window has its users' memberships, from one read of the part
    assert [len(w) for w, _ in windows] == [1_000, 1_000, 500]
    assert view.reads == 1
    last_window, groups = windows[2]
    assert groups["user-2000"] == ["even", "fives"] and groups["user-2001"] == ["odd"]
    assert set(groups) == {u.username for u in last_window}
