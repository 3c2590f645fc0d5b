"""Content digests of users and groups: what an incremental compares, not dates.

Disabling a user or changing a group does not move Cognito's modification date, so
change detection is by content. The digest covers everything a restore would write.
"""

from __future__ import annotations

import hashlib
import json

from .models import GroupRecord, UserRecord

DIGEST_HEX_CHARS = 16  # 64 bits: collisions between two versions of one user are negligible


def _digest(payload: object) -> str:
    data = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()[:DIGEST_HEX_CHARS]


def user_digest(user: UserRecord) -> str:
    return _digest(user.model_dump(mode="json", exclude={"modified"}))


def group_digest(group: GroupRecord) -> str:
    return _digest(group.model_dump(mode="json", exclude={"modified", "created"}))
