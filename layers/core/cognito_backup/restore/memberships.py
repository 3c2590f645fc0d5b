"""The snapshot's memberships by username, in an on-disk SQLite index read once per pass.

A restore plans its users in windows (`window_size`, 1,000 by default), each needing its users'
memberships. Reading the memberships part again for every window made a pass over the snapshot
cost windows x memberships (at 250,000 users, 250 reads of 265,000 records, on the thread that
feeds the writers); the index costs one read and stays on disk, not in memory.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..models import MembershipRecord

_BATCH = 5_000
# SQLite's page cache, per connection (its default is 2 MiB): the file is read through the OS's
# cache anyway, and a restore's memory must not grow with the pool (docs/benchmarks.md).
CACHE_KIB = 128


class MembershipIndex:
    """Group names by username (in the snapshot's order), from one read of its memberships."""

    def __init__(self, memberships: Iterable[MembershipRecord]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="cognito-backup-members-")
        try:
            self.db = sqlite3.connect(str(Path(self._dir.name) / "members.db"))
            self.db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self.db.execute("CREATE TABLE members (seq INTEGER PRIMARY KEY, username TEXT, grp TEXT)")
            # Indexed as the rows go in: CREATE INDEX afterwards sorts them all in memory
            self.db.execute("CREATE INDEX members_by_user ON members (username, seq)")
            batch: list[tuple[str, str]] = []
            for m in memberships:
                batch.append((m.username, m.group))
                if len(batch) >= _BATCH:
                    self._insert(batch)
            self._insert(batch)
            self.db.commit()
        except BaseException:
            self.close()
            raise

    def _insert(self, batch: list[tuple[str, str]]) -> None:
        self.db.executemany("INSERT INTO members (username, grp) VALUES (?, ?)", batch)
        batch.clear()

    def of(self, usernames: Iterable[str]) -> dict[str, list[str]]:
        """The groups of each of `usernames` that has any, in the snapshot's order."""
        found: dict[str, list[str]] = {}
        names = list(dict.fromkeys(usernames))
        for start in range(0, len(names), 500):  # under SQLite's limit of bound parameters
            chunk = names[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT username, grp FROM members WHERE username IN ({marks}) ORDER BY seq",  # noqa: S608
                chunk,
            )
            for username, group in rows:
                found.setdefault(username, []).append(group)
        return found

    def close(self) -> None:
        if hasattr(self, "db"):
            self.db.close()
        self._dir.cleanup()
