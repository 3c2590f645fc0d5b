"""Size of an hourly incremental against a full snapshot of the same pool.

Generates a pool (default 100,000 users), runs the real full export into an in-process
S3 (moto), changes 1 % of the users (attribute edits, disables, a few deletions and
sign-ups, group moves), runs the real incremental export, and prints both sizes.
Cognito is replaced by an in-memory pool (tools/cognito_local/memory_pool.py): sizes do
not depend on it, and moto's listing is too slow at this size.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime
from typing import Any

from moto import mock_aws

from cognito_backup.aws import AwsClients
from cognito_backup.models import Manifest
from cognito_backup.signing import KmsMac, ManifestSigning
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_local.keys import create_signing_key
from cognito_local.memory_pool import MemoryPool


def change_fraction(pool: MemoryPool, fraction: float, seed: int = 11) -> dict[str, int]:
    rng = random.Random(seed)
    names = sorted(pool.users)
    n = max(1, int(len(names) * fraction))
    picked = rng.sample(names, n)
    counts = {"edited": 0, "disabled": 0, "deleted": 0, "added": 0, "moved": 0}
    for i, name in enumerate(picked):
        user = pool.users[name]
        kind = i % 10
        if kind < 6:
            attrs = dict(user.attributes, family_name="Changed")
            pool.users[name] = user.model_copy(update={"attributes": attrs})
            counts["edited"] += 1
        elif kind < 8:
            pool.users[name] = user.model_copy(update={"enabled": not user.enabled})
            counts["disabled"] += 1
        elif kind == 8:
            del pool.users[name]
            for members in pool.members.values():
                if name in members:
                    members.remove(name)
            counts["deleted"] += 1
        else:
            groups = list(pool.members)
            for members in pool.members.values():
                if name in members:
                    members.remove(name)
            pool.members[rng.choice(groups)].append(name)
            counts["moved"] += 1
    for j in range(n // 10):
        user = MemoryPool.make_user(rng, 10_000_000 + j, datetime.now(UTC))
        pool.users[user.username] = user
        counts["added"] += 1
    pool.reindex()
    return counts


def sizes(manifest: Manifest) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in manifest.parts:
        out[part.kind or "?"] = out.get(part.kind or "?", 0) + part.bytes
    out["total"] = sum(p.bytes for p in manifest.parts)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--fraction", type=float, default=0.01)
    args = ap.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    pool = MemoryPool.generate(args.users)
    gateway: Any = pool
    with mock_aws():
        clients = AwsClients(region="us-east-1")
        clients.s3().create_bucket(Bucket="bench-sizes")
        signing = ManifestSigning(KmsMac(clients.kms(), create_signing_key(clients.kms())))
        store = SnapshotStore(clients.s3(), "bench-sizes", signing=signing)
        t0 = time.monotonic()
        full = run_export(gateway, store, pool.pool_id)
        t_full = time.monotonic() - t0
        changes = change_fraction(pool, args.fraction)
        t0 = time.monotonic()
        inc = run_export(gateway, store, pool.pool_id, incremental=True)
        t_inc = time.monotonic() - t0
        assert full.manifest_key and inc.manifest_key and inc.kind == "incremental"
        fs, is_ = sizes(store.read_manifest(full.manifest_key)), sizes(store.read_manifest(inc.manifest_key))
    print(f"pool: {args.users:,} users, {len(pool.groups)} groups; changed: {changes}")
    print(f"{'snapshot':<12} {'total KiB':>10} {'data KiB':>10} {'state KiB':>10} {'export s':>9}")
    for label, s, t in (("full", fs, t_full), ("incremental", is_, t_inc)):
        state = s.get("state", 0)
        data = s["total"] - state
        print(f"{label:<12} {s['total'] / 1024:>10.0f} {data / 1024:>10.0f} {state / 1024:>10.0f} {t:>9.1f}")
    print(
        f"incremental / full: {is_['total'] / fs['total']:.1%} in all; changes alone "
        f"{(is_['total'] - is_.get('state', 0)) / (fs['total'] - fs.get('state', 0)):.1%} of the full data"
    )
    print(f"incremental counts: {inc.counts.model_dump()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
