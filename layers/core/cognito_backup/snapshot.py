"""Take a snapshot: the one entry point of both exports (the Lambdas, the CLI, the tests).

An unfinished export of the pool is continued; otherwise a new one starts, incremental when
asked for and a valid base exists (else full). The full export's machinery is `export.ExportRun`,
the incremental's `incremental.IncrementalRun` (a subclass): this module sits above both, so
that neither imports the other.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .cognito import CognitoGateway
from .erasure import Ledger
from .errors import UsageError
from .export import (
    ExportOptions,
    ExportResult,
    ExportRun,
    ProgressFn,
    new_snapshot_id,
    open_checkpoint,
)
from .incremental import IncrementalRun, find_base
from .models import ExportCheckpoint, SnapshotKind, utcnow
from .pacing import Deadline
from .store import MANIFEST_NAME, SnapshotStore, pool_root


def run_export(
    gateway: CognitoGateway,
    store: SnapshotStore,
    pool_id: str,
    *,
    deadline: Deadline | None = None,
    options: ExportOptions | None = None,
    incremental: bool = False,
    progress: ProgressFn | None = None,
) -> ExportResult:
    """Export (or continue exporting) one pool. Bad input (no signing key included) fails
    before any write; the manifest is signed by the store's signing key."""
    options = options or ExportOptions()
    deadline = deadline or Deadline.never()
    if not pool_id:
        raise UsageError("a user pool id is required")
    store.signing.require_key("an export")  # every manifest is signed: refuse before any work
    requested: SnapshotKind = "incremental" if incremental else "full"
    # The bucket, the pool (no such pool / no access: fail before writing) and an open
    # checkpoint are looked up at once; their answers are taken in this order, so the first
    # problem reported is the same as if they had run one after another. Beside them, reads
    # that a new snapshot needs next: a free snapshot id and the first page of groups (both
    # unused when a checkpoint is continued; nothing is written before the checks pass), and
    # the erasure ledger (whom to leave out).
    now = utcnow()
    with ThreadPoolExecutor(max_workers=6, thread_name_prefix="export-checks") as checks:
        bucket_ok = checks.submit(store.check_bucket, pool_root(options.prefix, pool_id))
        pool_ok = checks.submit(gateway.describe_pool, pool_id)
        open_cp = checks.submit(open_checkpoint, store, options.prefix, pool_id, requested)
        free_id = checks.submit(new_snapshot_id, store, options.prefix, pool_id, now)
        first_groups = checks.submit(gateway.list_groups_page, pool_id, None)
        ledger_read = checks.submit(Ledger.load, store, options.prefix, pool_id)
        bucket_ok.result()
        pool_ok.result()
        cp = open_cp.result()
        ledger = ledger_read.result()
    if cp is None:
        base_key = None
        if incremental:
            base_key = find_base(store, options.prefix, pool_id)
        kind: SnapshotKind = "incremental" if base_key else "full"
        cp = ExportCheckpoint(
            snapshot_id=free_id.result(),
            kind=kind,
            user_pool_id=pool_id,
            region=gateway.region,
            prefix=options.prefix,
            started_at=now,
            base_manifest_key=base_key,
            erasures=ledger.ids,
        )
    run: ExportRun
    if cp.kind == "incremental":
        run = IncrementalRun(gateway, store, cp, deadline, options, progress)
    else:
        run = ExportRun(gateway, store, cp, deadline, options, progress)
    run.first_groups_page = first_groups
    # Everyone the ledger names now, even if erased after this snapshot began (its manifest
    # claims only the entries it began with: `forget` clears it of the later ones).
    run.forgotten = ledger.forgotten(store, pool_id)
    done = run.run()
    return ExportResult(
        status="complete" if done else "incomplete",
        kind=cp.kind,
        snapshot_id=cp.snapshot_id,
        manifest_key=(run.directory + MANIFEST_NAME) if done else None,
        base_manifest_key=cp.base_manifest_key,
        counts=cp.counts,
        parts=len(cp.parts),
        invocations=cp.invocations,
    )
