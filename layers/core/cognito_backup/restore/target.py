"""The target's state, read through the API into an on-disk SQLite index (never into memory).

One read costs ListUsers pages (60 users each), one ListGroups pass and ListUsersInGroup pages
for every group: all UserList / UserPoolResourceRead calls, the cheapest the restore makes. The
plan and the verification each read it once per invocation.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..cognito import CognitoGateway
from ..models import GroupRecord, UserRecord
from ..restore_rules import UsernameScheme


class TargetIndex:
    """Users (by every name that identifies them), groups and memberships of the target."""

    def __init__(self, scheme: UsernameScheme) -> None:
        self.scheme = scheme
        self._dir = tempfile.TemporaryDirectory(prefix="cognito-backup-target-")
        self.db = sqlite3.connect(str(Path(self._dir.name) / "target.db"))
        self.db.executescript(
            """
            CREATE TABLE users (username TEXT PRIMARY KEY, record TEXT NOT NULL, matched INTEGER DEFAULT 0);
            CREATE TABLE names (name TEXT PRIMARY KEY, username TEXT NOT NULL);
            CREATE TABLE groups (name TEXT PRIMARY KEY, record TEXT NOT NULL);
            CREATE TABLE members (username TEXT NOT NULL, grp TEXT NOT NULL, PRIMARY KEY (username, grp));
            """
        )

    @classmethod
    def read(cls, gateway: CognitoGateway, pool_id: str, scheme: UsernameScheme) -> TargetIndex:
        index = cls(scheme)
        for user in gateway.iter_users(pool_id):
            index.add_user(user)
        for group in gateway.iter_groups(pool_id):
            index.db.execute("INSERT INTO groups VALUES (?, ?)", (group.name, group.model_dump_json()))
            index.db.executemany(
                "INSERT OR IGNORE INTO members VALUES (?, ?)",
                ((name, group.name) for name in gateway.iter_members(pool_id, group.name)),
            )
        index.db.commit()
        return index

    def add_user(self, user: UserRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO users (username, record) VALUES (?, ?)",
            (user.username, user.model_dump_json()),
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO names VALUES (?, ?)", ((k, user.username) for k in self.scheme.keys(user))
        )

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    # ------------------------------------------------------------------ lookups
    def find(self, name: str) -> UserRecord | None:
        """The target user that `name` (a login: username, or email/phone) identifies."""
        row = self.db.execute(
            "SELECT u.record FROM names n JOIN users u ON u.username = n.username WHERE n.name = ?",
            (self.scheme.fold(name),),
        ).fetchone()
        return None if row is None else UserRecord.model_validate_json(row[0])

    def groups_of(self, username: str) -> set[str]:
        rows = self.db.execute("SELECT grp FROM members WHERE username = ?", (username,))
        return {r[0] for r in rows}

    def group(self, name: str) -> GroupRecord | None:
        row = self.db.execute("SELECT record FROM groups WHERE name = ?", (name,)).fetchone()
        return None if row is None else GroupRecord.model_validate_json(row[0])

    def group_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM groups ORDER BY name")]

    def members(self, group: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT username FROM members WHERE grp = ?", (group,))}

    # ------------------------------------------------------------------ mirror
    def match(self, usernames: Iterable[str]) -> None:
        self.db.executemany("UPDATE users SET matched = 1 WHERE username = ?", ((u,) for u in usernames))

    def unmatched(self) -> Iterator[UserRecord]:
        """Target users no snapshot user was matched to (after `match`), in username order."""
        for row in self.db.execute("SELECT record FROM users WHERE matched = 0 ORDER BY username"):
            yield UserRecord.model_validate_json(row[0])
