"""Time `forget` takes per snapshot it touches.

Builds a history as the schedules would (a full snapshot a day, incrementals in between, each
validated), with one person in every snapshot, into an in-process S3 and KMS (moto); Cognito is
the in-memory pool of tools/cognito_local/memory_pool.py (the erasure reads no Cognito). Then
runs the real `forget` of that person and prints its time, per snapshot checked and per snapshot
rewritten. moto answers in microseconds: in AWS every S3 request adds some 10-50 ms, which this
does not show (the counts of requests printed let you scale it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from bench_incremental import change_fraction
from moto import mock_aws

from cognito_backup.aws import AwsClients
from cognito_backup.forget import Forget
from cognito_backup.signing import KmsMac, ManifestSigning
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import validate_snapshot
from cognito_local.keys import create_signing_key
from cognito_local.memory_pool import MemoryPool


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=3, help="full snapshots")
    ap.add_argument("--incrementals", type=int, default=3, help="incrementals after each full")
    args = ap.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    pool = MemoryPool.generate(args.users)
    person = sorted(pool.users)[len(pool.users) // 2]
    gateway: Any = pool
    with mock_aws():
        clients = AwsClients(region="us-east-1")
        clients.s3().create_bucket(Bucket="bench-forget")
        clients.s3().put_bucket_versioning(
            Bucket="bench-forget", VersioningConfiguration={"Status": "Enabled"}
        )
        signing = ManifestSigning(KmsMac(clients.kms(), create_signing_key(clients.kms())))
        store = SnapshotStore(clients.s3(), "bench-forget", signing=signing)
        t0 = time.monotonic()
        for day in range(args.days):
            key = run_export(gateway, store, pool.pool_id).manifest_key
            assert key and validate_snapshot(store, key).valid
            for hour in range(args.incrementals):
                change_fraction(pool, 0.01, seed=day * 100 + hour)
                user = pool.users.get(person)
                if user is not None:  # the person changes too: in every incremental
                    attrs = dict(user.attributes, family_name=f"Changed{day}{hour}")
                    pool.users[person] = user.model_copy(update={"attributes": attrs})
                    pool.reindex()
                key = run_export(gateway, store, pool.pool_id, incremental=True).manifest_key
                assert key and validate_snapshot(store, key).valid
        setup = time.monotonic() - t0
        versions = sum(1 for _ in store.list_versions(""))
        result = Forget(store, pool.pool_id, prefix="backups", usernames=[person]).run()
    snapshots = args.days * (1 + args.incrementals)
    print(
        f"pool: {args.users:,} users; {snapshots} snapshots ({args.days} full, "
        f"{args.days * args.incrementals} incremental), {versions} object versions (built in {setup:.0f} s)"
    )
    print(
        f"forget: {result.status} in {result.seconds:.1f} s; {result.snapshots_checked} snapshots checked, "
        f"{result.snapshots_rewritten} rewritten ({result.parts_rewritten} parts, {result.records_removed} "
        f"records), {result.versions_deleted} older versions deleted; revalidated {result.revalidated}"
    )
    per_checked = result.seconds / max(1, result.snapshots_checked)
    print(
        f"per snapshot checked: {per_checked:.2f} s; per snapshot rewritten: "
        f"{result.seconds_per_snapshot_rewritten} s (moto in-process, no network)"
    )
    return 0 if result.status == "complete" and result.snapshots_rewritten == snapshots else 1


if __name__ == "__main__":
    sys.exit(main())
