"""Reports: what a run did (written beside the snapshot), and the dry run's plan.

A finished run's per-user sections (failures, skipped, admin_action, sub_map, username_map)
grow with the pool, so they are never held whole: the outcome objects the run checkpointed
are read one at a time and streamed into gzipped JSON Lines parts beside the report
(`ReportSections`), each bounded; the report keeps the first `plan_limit` entries of each
section inline, the totals and the parts' keys. `iter_section` reads a section back, whole.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from ..cognito import CognitoGateway
from ..errors import SnapshotCorruptError
from ..models import utcnow
from ..restore_models import (
    REPORT_SECTIONS,
    ReportPart,
    ReportSection,
    ReportTotals,
    RestoreCheckpoint,
    RestoreFailure,
    RestoreOutcomes,
    RestoreReport,
    RestoreStatus,
    UserNote,
)
from ..store import (
    RESTORE_REPORT_PREFIX,
    SnapshotStore,
    bounded_lines,
    decompressed_limit,
    manifest_dir,
    report_part_key,
    snapshot_id_for,
)
from .plan import Tally, decide_group, plan_users, removals
from .preflight import RestoreContext
from .target import TargetIndex

# Entries per report part: ~100 bytes a line, so a part's compressed buffer stays under ~1 MB.
REPORT_PART_MAX_RECORDS = 10_000


def _lines(section: ReportSection, outcomes: RestoreOutcomes) -> Iterator[dict[str, Any]]:
    if section == "failures":
        yield from (f.model_dump(mode="json") for f in outcomes.failures)
    elif section in ("skipped", "admin_action"):
        notes: list[UserNote] = getattr(outcomes, section)
        yield from (n.model_dump(mode="json") for n in notes)
    elif section == "sub_map":
        yield from ({"old_sub": old, "new_sub": new} for old, new in outcomes.sub_map.items())
    else:
        yield from ({"old_username": old, "new_username": new} for old, new in outcomes.username_map.items())


class _SectionPart:
    """The open part of one section: only its compressed bytes are in memory."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.gzip = gzip.GzipFile(fileobj=self.buffer, mode="wb", compresslevel=6, mtime=0)
        self.records = 0


class ReportSections:
    """Streams outcome objects into bounded parts; holds `inline_limit` entries per section.

    What it holds at any time: one open part per section (at most REPORT_PART_MAX_RECORDS
    entries, compressed), the inline entries (at most `inline_limit` per section) and one
    ReportPart per closed part; never the whole of a section.
    """

    def __init__(
        self,
        store: SnapshotStore,
        report_key: str,
        inline_limit: int,
        *,
        max_records: int | None = None,
    ) -> None:
        self.store = store
        self.report_key = report_key
        self.inline_limit = inline_limit
        self.max_records = max_records or REPORT_PART_MAX_RECORDS
        self.inline = RestoreOutcomes()
        self.totals = ReportTotals()
        self.parts: list[ReportPart] = []
        self._open: dict[ReportSection, _SectionPart] = {}
        self._seq: dict[ReportSection, int] = dict.fromkeys(REPORT_SECTIONS, 0)

    def add(self, outcomes: RestoreOutcomes) -> None:
        for section in REPORT_SECTIONS:
            for line in _lines(section, outcomes):
                self._write(section, line)
        self._keep_inline(outcomes)

    def _keep_inline(self, outcomes: RestoreOutcomes) -> None:
        room = self.inline_limit
        held = self.inline
        held.failures.extend(outcomes.failures[: max(0, room - len(held.failures))])
        held.skipped.extend(outcomes.skipped[: max(0, room - len(held.skipped))])
        held.admin_action.extend(outcomes.admin_action[: max(0, room - len(held.admin_action))])
        for mine, theirs in ((held.sub_map, outcomes.sub_map), (held.username_map, outcomes.username_map)):
            for old, new in theirs.items():
                if len(mine) >= room:
                    break
                mine[old] = new

    def _write(self, section: ReportSection, line: dict[str, Any]) -> None:
        part = self._open.get(section)
        if part is None:
            part = self._open[section] = _SectionPart()
        part.gzip.write(json.dumps(line, separators=(",", ":"), sort_keys=True).encode() + b"\n")
        part.records += 1
        setattr(self.totals, section, getattr(self.totals, section) + 1)
        if part.records >= self.max_records:
            self._close(section)

    def _close(self, section: ReportSection) -> None:
        part = self._open.pop(section, None)
        if part is None:
            return
        part.gzip.close()
        body = part.buffer.getvalue()
        self._seq[section] += 1
        key = report_part_key(self.report_key, section, self._seq[section])
        sha, _version = self.store.put_bytes(key, body, "application/x-ndjson")
        self.parts.append(
            ReportPart(section=section, key=key, records=part.records, bytes=len(body), sha256=sha)
        )

    def close(self) -> None:
        for section in REPORT_SECTIONS:
            self._close(section)

    @property
    def truncated(self) -> bool:
        held = self.inline
        return any(
            getattr(self.totals, s) > n
            for s, n in (
                ("failures", len(held.failures)),
                ("skipped", len(held.skipped)),
                ("admin_action", len(held.admin_action)),
                ("sub_map", len(held.sub_map)),
                ("username_map", len(held.username_map)),
            )
        )


def iter_section(store: SnapshotStore, report: RestoreReport, section: ReportSection) -> Iterator[Any]:
    """Every entry of one per-user section, in the run's order, one part in memory at a time.

    failures: RestoreFailure; skipped, admin_action: UserNote; sub_map, username_map:
    (old, new) pairs. A report without parts (a dry run, an incomplete or version-1 report)
    holds its sections inline, whole.
    """
    parts = [p for p in report.parts if p.section == section]
    if not parts and not report.sections_truncated:
        inline = getattr(report, section)
        yield from inline.items() if isinstance(inline, dict) else inline
        return
    for part in parts:
        body = store.get_bytes(part.key, max_bytes=part.bytes)
        if len(body) != part.bytes:
            raise SnapshotCorruptError(f"{part.key}: {len(body)} bytes, the report says {part.bytes}")
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            for line in bounded_lines(stream, part.key, decompressed_limit(part.bytes)):
                entry = json.loads(line)
                if section == "failures":
                    yield RestoreFailure.model_validate(entry)
                elif section in ("skipped", "admin_action"):
                    yield UserNote.model_validate(entry)
                elif section == "sub_map":
                    yield entry["old_sub"], entry["new_sub"]
                else:
                    yield entry["old_username"], entry["new_username"]


def write_whole_json(
    store: SnapshotStore, report: RestoreReport, out: Any, extra: dict[str, Any] | None = None
) -> None:
    """The report as one line of JSON with every per-user entry, as version 1 printed it.

    The sections are copied from the parts as they are read (one part in memory at a time),
    so `--json` still prints the whole sub_map of a pool of any size without holding it.
    """
    data = report.model_dump(mode="json", exclude={str(s) for s in REPORT_SECTIONS})
    data.update(extra or {})
    out.write(json.dumps(data, default=str)[:-1])
    for section in REPORT_SECTIONS:
        mapping = section in ("sub_map", "username_map")
        out.write(f', "{section}": ' + ("{" if mapping else "["))
        for n, entry in enumerate(iter_section(store, report, section)):
            sep = ", " if n else ""
            if mapping:
                old, new = entry
                out.write(f"{sep}{json.dumps(old)}: {json.dumps(new)}")
            else:
                out.write(sep + json.dumps(entry.model_dump(mode="json")))
        out.write("}" if mapping else "]")
    out.write("}\n")


def build_report(
    ctx: RestoreContext,
    cp: RestoreCheckpoint,
    gw: CognitoGateway,
    status: RestoreStatus,
    outcomes: RestoreOutcomes | None,
    ckpt_key: str,
    sections: ReportSections | None = None,
) -> RestoreReport:
    """The report; with `sections`, the streamed run's inline entries, totals and parts."""
    if sections is not None:
        outcomes = sections.inline
        totals = sections.totals
    else:
        outcomes = outcomes or RestoreOutcomes()
        totals = ReportTotals(
            failures=len(outcomes.failures),
            skipped=len(outcomes.skipped),
            admin_action=len(outcomes.admin_action),
            sub_map=len(outcomes.sub_map),
            username_map=len(outcomes.username_map),
        )
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
        totals=totals,
        parts=list(sections.parts) if sections is not None else [],
        sections_truncated=sections.truncated if sections is not None else False,
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
    equal to the snapshot; otherwise `failed`, with the differences counted. The outcome
    objects are streamed into the report's parts one at a time (ReportSections), so memory
    does not grow with the number of users. A rerun after a crash here writes the parts again
    under the same keys (the report key is checkpointed first).
    """
    cp.phase = "finishing"
    if cp.report_key is None:
        stamp = snapshot_id_for(utcnow())
        cp.report_key = (
            f"{manifest_dir(ctx.manifest_key)}{RESTORE_REPORT_PREFIX}{ctx.target_pool_id}-{stamp}.json"
        )
    checkpoint()
    sections = ReportSections(store, cp.report_key, ctx.options.plan_limit)
    for key in cp.outcome_keys:
        sections.add(RestoreOutcomes.model_validate(store.get_json(key) or {}))
    sections.close()
    failed = sections.totals.failures > 0 or cp.counts.differences > 0
    status: RestoreStatus = "failed" if failed else "complete"
    report = build_report(ctx, cp, gw, status, None, ckpt_key, sections)
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
