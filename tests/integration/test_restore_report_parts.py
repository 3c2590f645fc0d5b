"""The restore report's per-user sections are streamed to parts beside it, never held whole.

The report in S3 and what the run returns hold the first `plan_limit` entries of each section;
the parts beside the report hold every one; `--json` prints them all, read back part by part.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from restore_world import World, make_world, snapshot, target, unpaced

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.restore import apply as apply_module
from cognito_backup.restore import report as report_module
from cognito_backup.restore.report import ReportSections, iter_section, write_whole_json
from cognito_backup.restore_models import RestoreFailure, RestoreOutcomes, UserNote
from cognito_backup.store import REPORT_PART_SUFFIX, SnapshotStore


@pytest.fixture
def gateway(aws: AwsClients) -> CognitoGateway:
    return unpaced(aws.cognito())


@pytest.fixture
def world(aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway) -> Iterator[World]:
    yield from make_world(aws, store, gateway, enforce_quotas=False)


def lines_of(store: SnapshotStore, key: str) -> list[dict[str, Any]]:
    with gzip.GzipFile(fileobj=io.BytesIO(store.get_bytes(key))) as stream:
        return [json.loads(line) for line in stream]


def test_every_created_user_is_in_the_parts_and_only_the_first_ones_inline(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given parts of at most 7 entries, outcome objects of at most 10, and a limit of 5 inline
    monkeypatch.setattr(report_module, "REPORT_PART_MAX_RECORDS", 7)
    monkeypatch.setattr(apply_module, "OUTCOMES_PER_OBJECT", 10)
    source, key = snapshot(world, users=40, groups=3)
    dst = target(world)

    # When 40 users are restored in chunks of 4
    report = run_restore(
        world.gateway, world.store, key, dst, options=RestoreOptions(plan_limit=5, chunk_size=4)
    )

    # Then the report holds 5 of the 40 old->new subs and says it is cut; the parts hold all 40
    assert report.status == "complete", report.failures
    assert len(report.sub_map) == 5 and report.totals.sub_map == 40 and report.sections_truncated
    sub_parts = [p for p in report.parts if p.section == "sub_map"]
    assert [p.records for p in sub_parts] == [7, 7, 7, 7, 7, 5]
    old = {u.sub: u.username for u in world.gateway.iter_users(source)}
    new = {u.sub: u.username for u in world.gateway.iter_users(dst)}
    streamed = dict(iter_section(world.store, report, "sub_map"))
    assert set(streamed) == set(old) and {old[o]: new[n] for o, n in streamed.items()} == {
        name: name for name in old.values()
    }
    # ... each part lies beside the report, gzipped JSON Lines of ids only
    for part in report.parts:
        assert part.key.startswith(report.report_key.removesuffix(".json") + "-")
        assert part.key.endswith(REPORT_PART_SUFFIX)
        for line in lines_of(world.store, part.key):
            assert set(line) in ({"old_sub", "new_sub"}, {"username", "reason"})
    assert sum(p.records for p in report.parts if p.section == "admin_action") == report.totals.admin_action
    # ... and the report in S3 is the summary: the same inline entries, totals and part keys
    stored = world.store.get_json(report.report_key)
    assert stored["schema_version"] == 2 and len(stored["sub_map"]) == 5
    assert [p["key"] for p in stored["parts"]] == [p.key for p in report.parts]
    # the outcome objects were written by size, not time: more than one, all gone now
    assert not list(world.store.list_keys(f"backups/{source}/checkpoints/"))


def test_json_output_prints_every_entry_read_back_from_the_parts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_module, "REPORT_PART_MAX_RECORDS", 4)
    _source, key = snapshot(world, users=15, groups=2)
    dst = target(world)
    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(plan_limit=2))
    assert report.sections_truncated

    out = io.StringIO()
    write_whole_json(world.store, report, out, {"rebuild": None})

    printed = json.loads(out.getvalue())
    assert len(printed["sub_map"]) == 15 == report.totals.sub_map
    assert len(printed["admin_action"]) == report.totals.admin_action
    assert printed["status"] == "complete" and printed["rebuild"] is None
    assert printed["totals"]["sub_map"] == 15


def test_a_report_without_parts_prints_its_inline_sections(world: World) -> None:
    _source, key = snapshot(world, users=6, groups=1)
    dst = target(world)
    report = run_restore(world.gateway, world.store, key, dst)
    assert not report.sections_truncated and len(report.sub_map) == 6

    out = io.StringIO()
    write_whole_json(world.store, report.model_copy(update={"parts": []}), out)

    assert json.loads(out.getvalue())["sub_map"] == report.sub_map


class CountingStore:
    """A store that records what each put held, and nothing else."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def put_bytes(self, key: str, body: bytes, content_type: str = "") -> tuple[str, None]:
        self.bodies[key] = body
        return "0" * 64, None


def test_the_sections_hold_a_bounded_number_of_entries_however_many_users() -> None:
    # Given a writer with 3 entries inline and parts of 50
    store = CountingStore()
    sections = ReportSections(store, "p/restore-report-T-1.json", 3, max_records=50)  # type: ignore[arg-type]

    # When 2,000 users' outcomes pass through it, 100 at a time
    most_open = 0
    for batch in range(20):
        outcomes = RestoreOutcomes(
            sub_map={f"old-{batch}-{i}": f"new-{batch}-{i}" for i in range(100)},
            failures=[RestoreFailure(username=f"u-{batch}", reason="refused")],
            admin_action=[UserNote(username=f"a-{batch}-{i}", reason="why") for i in range(2)],
        )
        sections.add(outcomes)
        most_open = max(most_open, *(p.records for p in sections._open.values()))
    sections.close()

    # Then it never held more than 3 per section inline nor 50 in an open part, and wrote all
    assert sections.inline.size() == 9 and most_open < 50
    assert sections.totals.sub_map == 2_000 and sections.totals.failures == 20
    assert sum(p.records for p in sections.parts if p.section == "sub_map") == 2_000
    assert len(sections.parts) == 40 + 1 + 1 and sections.truncated
    keys = [p.key for p in sections.parts if p.section == "sub_map"]
    assert keys[0] == "p/restore-report-T-1-sub_map-00001.ndjson.gz" and len(set(keys)) == 40
    sub_parts = [p for p in sections.parts if p.section == "sub_map"]
    total = sum(len(gzip.decompress(store.bodies[p.key]).splitlines()) for p in sub_parts)
    assert total == 2_000


def test_a_run_never_holds_more_outcomes_than_one_object(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given outcome objects of at most 6 entries and chunks of 3 users
    monkeypatch.setattr(apply_module, "OUTCOMES_PER_OBJECT", 6)
    _source, key = snapshot(world, users=30, groups=1)
    dst = target(world)
    held: list[int] = []
    real = apply_module.RestoreRun.checkpoint

    def spy(self: apply_module.RestoreRun) -> None:
        held.append(self.pending.size())
        real(self)

    monkeypatch.setattr(apply_module.RestoreRun, "checkpoint", spy)

    # When the restore runs with checkpoints due only every hour
    report = run_restore(
        world.gateway, world.store, key, dst, options=RestoreOptions(chunk_size=3, checkpoint_seconds=3600)
    )

    # Then the outcomes went out at least every 6 entries plus one chunk (3 users, each up to
    # a sub and a note), never all at the end
    assert report.status == "complete"
    assert max(held) <= 6 + 3 * 2 and len([n for n in held if n]) >= 30 // 12
