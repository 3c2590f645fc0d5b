"""Reports: what a run did (written beside the snapshot), and the dry run's plan."""

from __future__ import annotations

from collections.abc import Callable

from ..cognito import CognitoGateway
from ..models import utcnow
from ..restore_models import RestoreCheckpoint, RestoreOutcomes, RestoreReport, RestoreStatus
from ..store import RESTORE_REPORT_PREFIX, SnapshotStore, manifest_dir, snapshot_id_for
from .plan import Tally, decide_group, plan_users, removals
from .preflight import RestoreContext
from .target import TargetIndex


def build_report(
    ctx: RestoreContext,
    cp: RestoreCheckpoint,
    gw: CognitoGateway,
    status: RestoreStatus,
    outcomes: RestoreOutcomes | None,
    ckpt_key: str,
) -> RestoreReport:
    outcomes = outcomes or RestoreOutcomes()
    options = ctx.options
    return RestoreReport(
        status=status,
        manifest_key=ctx.manifest_key,
        snapshot_id=ctx.snapshot_id,
        source_user_pool_id=ctx.source_pool_id,
        target_user_pool_id=ctx.target_pool_id,
        conflict_policy=options.conflict_policy,
        password_strategy=options.password_strategy,
        usernames=list(options.usernames) if options.usernames else None,
        groups=list(options.groups) if options.groups else None,
        started_at=cp.started_at,
        finished_at=utcnow() if status != "incomplete" else None,
        invocations=cp.invocations,
        counts=cp.counts,
        failures=outcomes.failures,
        skipped=outcomes.skipped,
        admin_action=outcomes.admin_action,
        sub_map=outcomes.sub_map,
        username_map=outcomes.username_map,
        report_key=cp.report_key,
        checkpoint_key=ckpt_key if status == "incomplete" else None,
        cognito_calls=gw.stats.calls,
        cognito_throttled=gw.stats.throttled,
        mirror=options.mirror,
        verified=cp.verified,
        differences=cp.differences,
        signature="unsigned" if ctx.signature == "unsigned" else "signed",
    )


def finish(
    ctx: RestoreContext,
    cp: RestoreCheckpoint,
    gw: CognitoGateway,
    store: SnapshotStore,
    ckpt_key: str,
    checkpoint: Callable[[], None],
) -> RestoreReport:
    """Write the report beside the snapshot, then drop the checkpoint and its outcomes.

    `complete` only when nothing failed and the verification (unless skipped) found the target
    equal to the snapshot; otherwise `failed`, with the differences counted.
    """
    cp.phase = "finishing"
    if cp.report_key is None:
        stamp = snapshot_id_for(utcnow())
        cp.report_key = (
            f"{manifest_dir(ctx.manifest_key)}{RESTORE_REPORT_PREFIX}{ctx.target_pool_id}-{stamp}.json"
        )
    checkpoint()
    outcomes = RestoreOutcomes()
    for key in cp.outcome_keys:
        outcomes.merge(RestoreOutcomes.model_validate(store.get_json(key) or {}))
    failed = bool(outcomes.failures) or cp.counts.differences > 0
    report = build_report(ctx, cp, gw, "failed" if failed else "complete", outcomes, ckpt_key)
    store.put_json(cp.report_key, report)
    store.delete(ckpt_key)
    for key in cp.outcome_keys:
        store.delete(key)
    return report


def plan_report(
    gw: CognitoGateway, store: SnapshotStore, ctx: RestoreContext, ckpt_key: str
) -> RestoreReport:
    """The dry run: the very decisions a real run would apply, tallied; writes nothing anywhere."""
    raw = store.get_json(ckpt_key)
    resumed_from = RestoreCheckpoint.model_validate(raw).started_at if raw is not None else None
    started_at = resumed_from or utcnow()
    tally = Tally(ctx)
    for name in ctx.attributes.names:
        tally.add(tally.plan.custom_attributes_to_add, name)
    index = TargetIndex.read(gw, ctx.target_pool_id, ctx.scheme)
    try:
        for group in ctx.groups():
            tally.group(group.name, decide_group(group, index.group(group.name), ctx.options.policy))
        users = 0
        for plans in plan_users(ctx, index, ctx.users(), resumed_from):
            for up in plans:
                users += 1
                tally.user(up)
        if ctx.options.mirror:
            native, _federated, groups = removals(ctx, index)
            tally.removal(native, groups)
    finally:
        index.close()
    subset = ctx.subset()
    tally.plan.users_not_in_snapshot = list(subset.not_found) if subset else []
    cp = RestoreCheckpoint(
        manifest_key=ctx.manifest_key,
        snapshot_id=ctx.snapshot_id,
        source_user_pool_id=ctx.source_pool_id,
        target_user_pool_id=ctx.target_pool_id,
        options=ctx.options,
        started_at=started_at,
    )
    cp.counts.users_considered = users
    report = build_report(ctx, cp, gw, "complete", None, ckpt_key)
    return report.model_copy(update={"dry_run": True, "plan": tally.plan, "invocations": 1})
