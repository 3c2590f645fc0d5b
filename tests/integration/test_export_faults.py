"""Exports under Cognito's and S3's real faults: one run, an exact snapshot.

5 % of Cognito calls answer 500 (half of them after the call took effect), 1 % of connections
drop, and throttling storms cut every quota to a tenth; S3 answers 500 or drops the connection
on 5 % of calls. Storms follow a clock that moves one tick per Cognito call, so which calls they
hit does not depend on the machine's speed; the draws are seeded.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from export_world import change_round, comparable, make_pool, read_records, source_state, view_state

from cognito_backup.cognito import CognitoGateway
from cognito_backup.export import ExportOptions
from cognito_backup.pacing import CountdownDeadline, Pacer
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import validate_snapshot
from cognito_local.faults import FaultPlan, Faults
from cognito_local.inprocess import faulty_s3, strict_cognito
from cognito_local.seed import create_pool, seed_pool
from cognito_local.strict import StrictEngine

COGNITO_FAULTS = Faults(
    rate=0.05,
    after_effect=0.5,
    reset_rate=0.01,
    storm_every=1.5,
    storm_seconds=0.5,
    storm_fraction=0.1,
    seed=1,
)
S3_FAULTS = Faults(rate=0.1, after_effect=0.5, reset_rate=0.02, seed=1)
TICK = 0.05  # seconds of the engine's clock per Cognito call: 20 calls a "second"


class CallClock:
    """A clock that moves one tick each time it is read (the engine reads it once per call)."""

    def __init__(self) -> None:
        self._ticks = itertools.count()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return next(self._ticks) * TICK


class Faulty:
    def __init__(self, engine: StrictEngine, s3: FaultPlan) -> None:
        self.engine = engine
        self.s3 = s3

    def injected(self) -> dict[str, int]:
        cognito = self.engine.stats()["faults"]["total"]
        s3 = self.s3.stats()["total"]
        return {**{f"cognito_{k}": v for k, v in cognito.items()}, **{f"s3_{k}": v for k, v in s3.items()}}


@pytest.fixture
def faulty(aws: Any, store: SnapshotStore) -> Iterator[Faulty]:
    with (
        strict_cognito(clients=[aws.cognito()], faults=COGNITO_FAULTS, clock=CallClock()) as engine,
        faulty_s3(S3_FAULTS, [aws.s3()]) as s3,
    ):
        yield Faulty(engine, s3)


def resilient_gateway(aws: Any) -> CognitoGateway:
    """Unpaced (the storms must bite) and with no wall-clock backoff: the storm clock is calls."""
    return CognitoGateway(aws.cognito(), Pacer(quotas={}), base_delay=0.0, max_attempts=12)


def assert_clean(store: SnapshotStore, aws: Any, pool: str, manifest_key: str) -> None:
    """The snapshot's folder holds exactly its manifest and parts; no checkpoint or work is left."""
    manifest = store.read_manifest(manifest_key)
    folder = manifest_key.rsplit("/", 1)[0]
    keys = {o["Key"] for o in aws.s3().list_objects_v2(Bucket=store.bucket, Prefix=folder)["Contents"]}
    assert keys == {p.key for p in manifest.parts} | {manifest_key}
    assert list(store.list_keys(f"backups/{pool}/checkpoints/")) == []


def test_a_full_export_under_faults_is_exact_in_one_run(aws, store, gateway, faulty) -> None:
    # Given a pool of 76 users, 65 groups (two pages), a group of 65 members, and a reference
    # snapshot of it taken without faults
    with faulty.engine.faults_paused(), faulty.engine.quotas_paused():
        pool = make_pool(aws.cognito())
        expected_state = source_state(aws.cognito(), pool)
    faulty.engine.reset()
    # When it is exported under faults, with small parts (so parts and checkpoints are written
    # all along)
    result = run_export(resilient_gateway(aws), store, pool, options=ExportOptions(part_max_bytes=4_000))
    injected = faulty.injected()
    # Then one run wrote a complete snapshot that describes the pool exactly, each record once
    assert result.status == "complete" and result.invocations == 1 and result.manifest_key
    assert view_state(store, result.manifest_key) == expected_state
    manifest = store.read_manifest(result.manifest_key)
    records = read_records(store, manifest)
    assert len(comparable(records)) == len(set(comparable(records)))
    assert (manifest.counts.users, manifest.counts.groups, manifest.counts.memberships) == (76, 65, 66)
    assert_clean(store, aws, pool, result.manifest_key)
    assert validate_snapshot(store, result.manifest_key).valid
    # and every kind of fault was met on the way
    for kind in (
        "cognito_before",
        "cognito_after",
        "cognito_reset",
        "cognito_storm",
        "s3_before",
        "s3_after",
    ):
        assert injected[kind] > 0, str(injected)
    # and the content is the faultless export's
    with faulty.engine.faults_paused(), faulty.engine.quotas_paused():
        faulty.s3.faults = Faults()
        reference = run_export(gateway, store, pool, options=ExportOptions(prefix="reference"))
    assert reference.manifest_key
    assert comparable(read_records(store, store.read_manifest(reference.manifest_key))) == comparable(records)


def test_an_incremental_export_under_faults_is_exact_in_one_run(aws, store, gateway, faulty) -> None:
    # Given a full snapshot of a pool, then a round of changes (adds, edits, disables, moves,
    # deletions of users and groups), all without faults
    cognito = aws.cognito()
    with faulty.engine.faults_paused(), faulty.engine.quotas_paused():
        faulty.s3.faults = Faults()
        pool = create_pool(cognito, "incremental-under-faults")
        seed_pool(cognito, pool, users=150, groups=12, big_group_members=65)
        full = run_export(gateway, store, pool)
        change_round(cognito, pool, 1)
        expected_state = source_state(cognito, pool)
    faulty.s3.faults = S3_FAULTS
    faulty.engine.reset()
    # When an incremental is exported under faults
    inc = run_export(
        resilient_gateway(aws), store, pool, incremental=True, options=ExportOptions(part_max_bytes=2_000)
    )
    injected = faulty.injected()
    # Then one run wrote an incremental on the full whose chain is the pool, exactly
    assert inc.status == "complete" and inc.invocations == 1 and inc.manifest_key
    assert inc.kind == "incremental" and inc.base_manifest_key == full.manifest_key
    assert (inc.counts.users_deleted, inc.counts.groups_deleted) == (5, 1)
    assert view_state(store, inc.manifest_key) == expected_state
    assert_clean(store, aws, pool, inc.manifest_key)
    assert validate_snapshot(store, inc.manifest_key).valid
    for kind in ("cognito_before", "cognito_after", "cognito_storm"):
        assert injected[kind] > 0, str(injected)
    assert injected["s3_before"] + injected["s3_after"] + injected["s3_reset"] > 0, injected


def test_an_export_cut_by_its_deadline_resumes_exactly_under_faults(aws, store, faulty) -> None:
    # Given a pool, and an export cut every 3 steps (a checkpoint each time) under faults
    with faulty.engine.faults_paused(), faulty.engine.quotas_paused():
        pool = make_pool(aws.cognito(), extra_users=40, groups=8, big_group=30)
        expected_state = source_state(aws.cognito(), pool)
    faulty.engine.reset()
    options = ExportOptions(part_max_bytes=3_000, parallelism=3)
    gw = resilient_gateway(aws)
    results = [run_export(gw, store, pool, deadline=CountdownDeadline(3), options=options)]
    while results[-1].status != "complete":
        assert len(results) < 100
        results.append(run_export(gw, store, pool, deadline=CountdownDeadline(3), options=options))
    # Then the runs finished one snapshot, and it is the pool exactly
    final = results[-1]
    assert len(results) > 2 and len({r.snapshot_id for r in results}) == 1 and final.manifest_key
    assert view_state(store, final.manifest_key) == expected_state
    assert_clean(store, aws, pool, final.manifest_key)
    assert faulty.injected()["cognito_before"] + faulty.injected()["cognito_after"] > 0
