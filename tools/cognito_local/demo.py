"""`cognito-backup demo`: the whole product on an embedded local AWS, no account needed.

Starts a strict moto server on 127.0.0.1, seeds a realistic pool, and drives the real
CLI through a full export, validation, a round of changes, an incremental export,
validation again, a restore of the latest point into a new pool, and a comparison of the
restored pool with the source. Exits non-zero if anything disagrees.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import boto3

from .seed import create_pool, pool_state, seed_pool
from .server import LocalAws

BUCKET = "cognito-backup-demo"
REGION = "us-east-1"
DEMO_USERS = 300
DEMO_GROUPS = 6


@contextmanager
def _local_env(endpoint_url: str) -> Iterator[None]:
    names = (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_PROFILE",
        "COGNITO_BACKUP_SIGNING_KEY",
    )
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_REGION=REGION,
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cli(*argv: str) -> tuple[int, str, str]:
    from cognito_backup.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


class Demo:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures: list[str] = []
        self.timings: list[tuple[str, float]] = []

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, label: str, *argv: str) -> str:
        start = time.monotonic()
        code, stdout, stderr = _cli(*argv)
        took = time.monotonic() - start
        self.timings.append((label, took))
        lines = [line for line in stdout.strip().splitlines() if line]
        self.say(f"== {label} ({took:.1f}s, exit {code})")
        for line in lines[:-1] if argv[0] == "export" else lines:
            self.say(f"   {line}")
        if code != 0:
            self.failures.append(f"{label}: exit {code}: {stderr.strip()}")
            self.say(f"   FAILED: {stderr.strip()}")
        return lines[-1] if lines else ""

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        self.say(f"   {'ok ' if ok else 'FAIL'} {label}{': ' + detail if detail and not ok else ''}")
        if not ok:
            self.failures.append(label)


def _change_pool(cognito: Any, pool_id: str) -> dict[str, int]:
    """Add, edit, disable, delete users and move some between groups."""
    users = cognito.list_users(UserPoolId=pool_id, Limit=60)["Users"]
    names = [u["Username"] for u in users]
    groups = [g["GroupName"] for g in cognito.list_groups(UserPoolId=pool_id, Limit=60)["Groups"]]
    for i in range(5):
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=f"new.user{i}@example.com",
            UserAttributes=[
                {"Name": "email", "Value": f"new.user{i}@example.com"},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "given_name", "Value": "Nouvelle"},
            ],
            MessageAction="SUPPRESS",
        )
        cognito.admin_add_user_to_group(
            UserPoolId=pool_id, Username=f"new.user{i}@example.com", GroupName=groups[0]
        )
    for name in names[0:4]:
        cognito.admin_update_user_attributes(
            UserPoolId=pool_id, Username=name, UserAttributes=[{"Name": "family_name", "Value": "Changed"}]
        )
    for name in names[4:7]:
        cognito.admin_disable_user(UserPoolId=pool_id, Username=name)
    for name in names[7:10]:
        cognito.admin_delete_user(UserPoolId=pool_id, Username=name)
    moved = 0
    for name in names[10:14]:
        for g in cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=name)["Groups"]:
            cognito.admin_remove_user_from_group(UserPoolId=pool_id, Username=name, GroupName=g["GroupName"])
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=name, GroupName=groups[-1])
        moved += 1
    return {"added": 5, "edited": 4, "disabled": 3, "deleted": 3, "moved": moved}


def _differences(source: Any, target: Any) -> list[str]:
    """What differs between two pool states, passwords and statuses aside."""
    diffs = []
    if set(source["users"]) != set(target["users"]):
        missing = set(source["users"]) - set(target["users"])
        extra = set(target["users"]) - set(source["users"])
        diffs.append(f"users differ: {len(missing)} missing, {len(extra)} extra")
    for name, user in source["users"].items():
        other = target["users"].get(name)
        if other is None:
            continue
        if other["attributes"] != user["attributes"]:
            diffs.append(f"attributes differ for one user ({len(diffs)})")
        if other["enabled"] != user["enabled"]:
            diffs.append("enabled flag differs for one user")
    if source["groups"] != target["groups"]:
        diffs.append("groups differ")
    if source["memberships"] != target["memberships"]:
        diffs.append(
            f"memberships differ: {len(source['memberships'] - target['memberships'])} missing, "
            f"{len(target['memberships'] - source['memberships'])} extra"
        )
    return diffs


def command(args: Any, out: TextIO, err: TextIO) -> int:
    """The whole cycle on an embedded local AWS (`cognito-backup demo`, `make demo`)."""
    return run_demo(out)


def run_demo(out: TextIO) -> int:
    demo = Demo(out)
    with LocalAws(latency=0.0) as aws, _local_env(aws.endpoint_url):
        demo.say(f"Local AWS (moto, strict Cognito quotas) on {aws.endpoint_url}")
        # Every manifest is signed with a KMS HMAC key, and checked with it on every read.
        os.environ["COGNITO_BACKUP_SIGNING_KEY"] = aws.signing_key(REGION)
        demo.say(f"Signing key (KMS HMAC_256): {os.environ['COGNITO_BACKUP_SIGNING_KEY']}")
        session = boto3.session.Session(region_name=REGION)
        cognito = session.client("cognito-idp", endpoint_url=aws.endpoint_url)
        s3 = session.client("s3", endpoint_url=aws.endpoint_url)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        pool_id = create_pool(cognito, "demo-source")
        seeded = seed_pool(
            cognito, pool_id, users=DEMO_USERS, groups=DEMO_GROUPS, big_group_members=80, confirmed_share=0.85
        )
        demo.say(
            f"Seeded pool {pool_id}: {seeded.users} users ({seeded.confirmed} confirmed, "
            f"{seeded.disabled} disabled, "
            f"{seeded.unverified_email} with unverified email), {seeded.groups} groups, "
            f"{seeded.memberships} memberships"
        )
        full_key = demo.step("full export", "export", "--user-pool-id", pool_id, "--bucket", BUCKET)
        demo.step("validate full", "validate", "--bucket", BUCKET, "--manifest", full_key)
        changes = _change_pool(cognito, pool_id)
        demo.say("== changes: " + ", ".join(f"{v} {k}" for k, v in changes.items()))
        source_then = pool_state(cognito, pool_id)
        inc_key = demo.step(
            "incremental export", "export", "--user-pool-id", pool_id, "--bucket", BUCKET, "--incremental"
        )
        demo.check("incremental builds on the full snapshot", "/incremental/" in inc_key, inc_key)
        demo.step("validate incremental", "validate", "--bucket", BUCKET, "--manifest", inc_key)
        demo.step("list", "list", "--bucket", BUCKET, "--user-pool-id", pool_id)
        demo.step("diff", "diff", "--bucket", BUCKET, "--from", full_key, "--to", inc_key)
        target_id = create_pool(cognito, "demo-restored")
        demo.step(
            "restore latest point into a new pool",
            "restore",
            "--bucket",
            BUCKET,
            "--manifest",
            inc_key,
            "--target-user-pool-id",
            target_id,
        )
        demo.say("== compare restored pool with the source as it was at the incremental")
        restored = pool_state(cognito, target_id)
        diffs = _differences(source_then, restored)
        demo.check(
            f"{len(restored['users'])} users, {len(restored['groups'])} groups, "
            f"{len(restored['memberships'])} memberships match the source",
            not diffs,
            "; ".join(diffs[:5]),
        )
        stats = aws.engine.stats()
        total_calls = stats["total"]
        demo.say(f"Cognito calls: {total_calls['calls']}, throttled: {total_calls['throttled']}")
        demo.say("")
        demo.say("Snapshots are in s3://" + BUCKET + "/backups/" + pool_id + "/ ; inspect one with:")
        demo.say(f"  cognito-backup validate --bucket {BUCKET} --manifest {inc_key} --json")
        total = sum(t for _, t in demo.timings)
        if demo.failures:
            demo.say(f"DEMO FAILED ({len(demo.failures)} problems, {total:.1f}s):")
            for f in demo.failures:
                demo.say(f"  - {f}")
            return 1
        demo.say(f"DEMO OK: exported, validated, changed, exported again, restored, compared ({total:.1f}s)")
        return 0
