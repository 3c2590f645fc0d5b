"""Restore: make a target user pool equal to a snapshot, by reconciliation, not replay.

Read the target, decide what differs from the snapshot (plan.py), apply writes that are safe to
repeat (apply.py), then read the target again and compare (verify.py). A dry run prints exactly
the plan, from the very same decisions. The parts, each readable on its own:

    preflight.py  every refusal (reads only, nothing written) and the context the rest needs
    target.py     the target's users, groups and memberships in an on-disk SQLite index
    plan.py       the one decision path: snapshot record + target state -> writes wanted
    apply.py      one invocation of a real run: phases, checkpoints, the two thread pools
    verify.py     the final comparison: the plan again, on a fresh read; what is left differs
    report.py     the report beside the snapshot, and the dry run's plan
"""

from __future__ import annotations

from ..cognito import CognitoGateway
from ..observability import logger
from ..pacing import Deadline
from ..restore_models import RestoreOptions, RestoreReport
from ..store import SnapshotStore, checkpoint_key
from .apply import ProgressFn, RestoreRun
from .preflight import RestoreContext, preflight
from .report import plan_report

__all__ = [
    "RestoreContext",
    "RestoreOptions",
    "RestoreReport",
    "run_restore",
]


def run_restore(
    gateway: CognitoGateway,
    store: SnapshotStore,
    manifest_key: str,
    target_pool_id: str,
    *,
    options: RestoreOptions | None = None,
    deadline: Deadline | None = None,
    progress: ProgressFn | None = None,
) -> RestoreReport:
    """Restore (or continue restoring) the pool state of a snapshot into a target pool.

    Raises RestoreRefusedError (nothing written) when the restore would do harm. Returns the
    report: "complete" (verified equal, or verification skipped: `verified` says which),
    "failed" (failures or differences left; written beside the snapshot), or "incomplete"
    (stopped at the deadline; call again with the same arguments to go on).
    """
    options = options or RestoreOptions()
    ctx = preflight(gateway, store, manifest_key, target_pool_id, options)
    if options.dry_run:
        name = f"restore-{target_pool_id}-{ctx.snapshot_id}"
        report = plan_report(gateway, store, ctx, checkpoint_key(ctx.prefix, ctx.source_pool_id, name))
    else:
        report = RestoreRun(gateway, store, ctx, deadline or Deadline.never(), progress).run()
    logger.info(
        "restore step finished",
        extra={
            "status": report.status,
            "dry_run": report.dry_run,
            "snapshot_id": report.snapshot_id,
            "source_user_pool_id": report.source_user_pool_id,
            "target_user_pool_id": report.target_user_pool_id,
            "invocation": report.invocations,
            "users_considered": report.counts.users_considered,
            "users_created": report.counts.created,
            "users_failed": report.counts.failed,
            "failures": report.totals.failures,
            "differences": report.counts.differences,
            "verified": report.verified,
            "memberships_added": report.counts.memberships_added,
            "cognito_calls": report.cognito_calls,
            "throttled": report.cognito_throttled,
        },
    )
    return report
