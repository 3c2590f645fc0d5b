"""Verdicts published on EventBridge: what the warm standby (and anything else) listens to.

After recording a verdict the validator puts one event on the account's default bus:
source `cognito-backup`, detail-type `Snapshot Validated`, detail with ids, keys, counts and
the verdict, never a record's content. The standby rule in template.yaml starts the restore
state machine (mirror into the standby pool) for every `passed` snapshot of the pool.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from .errors import StorageError

EVENT_SOURCE = "cognito-backup"
SNAPSHOT_VALIDATED = "Snapshot Validated"


def publish_verdict(events_client: Any, detail: dict[str, Any]) -> None:
    """One PutEvents entry; a failed entry raises (the invocation fails and is retried)."""
    try:
        resp = events_client.put_events(
            Entries=[{"Source": EVENT_SOURCE, "DetailType": SNAPSHOT_VALIDATED, "Detail": json.dumps(detail)}]
        )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        raise StorageError(code, "the verdict event could not be published") from exc
    if resp.get("FailedEntryCount"):
        entry = resp.get("Entries", [{}])[0]
        raise StorageError(str(entry.get("ErrorCode", "PutEventsFailed")), "the verdict event was refused")
