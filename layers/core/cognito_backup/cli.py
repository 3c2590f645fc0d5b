"""`cognito-backup`: the same core functions as the Lambdas, from a terminal.

Every command honours the standard AWS environment (AWS_PROFILE, AWS_REGION and
AWS_ENDPOINT_URL) and `--endpoint-url`. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, NoCredentialsError

from . import __version__
from .aws import AwsClients
from .cognito import CognitoGateway
from .errors import BackupError, UsageError
from .export import DEFAULT_PARALLELISM, ExportOptions
from .models import Counts, Manifest
from .pacing import DEFAULT_QUOTAS, Pacer
from .runtime import signing_for
from .signing import VerifyBy
from .snapshot import run_export
from .store import SnapshotStore, layout_snapshot_id, pool_root


class Progress:
    """One self-rewriting line on a terminal; silent when stderr is not one."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._tty = stream.isatty()
        self._start = time.monotonic()
        self._last = 0.0

    def counts(self, counts: Counts) -> None:
        now = time.monotonic()
        if not self._tty or now - self._last < 0.2:
            return
        self._last = now
        self._stream.write(
            f"\r{self._label}: {counts.users} users, {counts.groups} groups, "
            f"{counts.memberships} memberships ({now - self._start:.0f}s)"
        )
        self._stream.flush()

    def step(self, what: str, n: int) -> None:
        now = time.monotonic()
        if not self._tty or now - self._last < 0.2:
            return
        self._last = now
        self._stream.write(f"\r{self._label}: {n} {what} ({now - self._start:.0f}s)")
        self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint-url", help="AWS endpoint (e.g. a local emulator); default AWS_ENDPOINT_URL"
    )
    common.add_argument("--region", help="AWS Region; default AWS_REGION / the profile's")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--signing-key",
        help="KMS HMAC key (id, ARN or alias) that signs manifests (export) and verifies them; "
        "default COGNITO_BACKUP_SIGNING_KEY",
    )
    unsigned_help = (
        "accept manifests with no signature at all, for snapshots made before signing existed "
        "(a wrong signature is refused all the same; an unsigned snapshot proves nothing about who wrote it)"
    )

    p = argparse.ArgumentParser(prog="cognito-backup", description=__doc__)
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("export", parents=[common], help="write a snapshot of a user pool")
    e.add_argument("--user-pool-id", required=True)
    e.add_argument("--bucket", required=True)
    e.add_argument("--prefix", default="backups")
    e.add_argument(
        "--incremental", action="store_true", help="only what changed since the last valid snapshot"
    )
    e.add_argument("--kms-key-id", help="KMS key for server-side encryption (default SSE-S3)")
    e.add_argument(
        "--parallelism", type=int, default=DEFAULT_PARALLELISM, help="listing calls in flight at once"
    )

    v = sub.add_parser("validate", parents=[common], help="check that a snapshot is whole")
    v.add_argument("--bucket", required=True)
    v.add_argument("--manifest", required=True, help="S3 key of the snapshot's manifest.json")
    v.add_argument("--no-record", action="store_true", help="do not tag the manifest or write a report")
    v.add_argument("--allow-unsigned", action="store_true", help=unsigned_help)

    r = sub.add_parser("restore", parents=[common], help="rebuild a pool from a snapshot")
    r.add_argument("--bucket", required=True)
    r.add_argument("--manifest", required=True)
    target = r.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-user-pool-id")
    target.add_argument(
        "--create-target-pool",
        metavar="NAME",
        help="create the pool from the snapshot's configuration (in --region), then restore into it",
    )
    r.add_argument(
        "--idp-secrets",
        metavar="FILE",
        help='with --create-target-pool: JSON {"<provider>": {"client_secret": "..."}}',
    )
    r.add_argument("--dry-run", action="store_true")
    r.add_argument("--username", action="append", default=[], help="restore only these users (repeatable)")
    r.add_argument(
        "--group",
        action="append",
        default=[],
        help="restore these groups with every member they had, membership included (repeatable)",
    )
    r.add_argument("--conflict-policy", choices=["skip", "overwrite", "fail"], default="skip")
    r.add_argument("--password-strategy", choices=["random-confirmed", "invite"], default="random-confirmed")
    r.add_argument("--force", action="store_true", help="restore even a snapshot whose verdict is failed")
    r.add_argument("--allow-same-pool", action="store_true")
    r.add_argument(
        "--mirror",
        action="store_true",
        help="also remove native users, groups and memberships the snapshot lacks (implies overwrite)",
    )
    r.add_argument(
        "--no-verify", action="store_true", help="skip the final read-and-compare (the report says so)"
    )
    r.add_argument("--kms-key-id")
    r.add_argument("--allow-unsigned", action="store_true", help=unsigned_help)

    li = sub.add_parser("list", parents=[common], help="snapshots of a pool, newest first")
    li.add_argument("--bucket", required=True)
    li.add_argument("--user-pool-id", required=True)
    li.add_argument("--prefix", default="backups")

    d = sub.add_parser("diff", parents=[common], help="what changed between two snapshots")
    d.add_argument("--bucket", required=True)
    d.add_argument("--from", dest="from_key", required=True)
    d.add_argument("--to", dest="to_key", required=True)
    d.add_argument("--details", action="store_true", help="list usernames and group names")

    dr = sub.add_parser(
        "drill", parents=[common], help="restore a snapshot into a scratch pool, check it, delete the pool"
    )
    dr.add_argument("--bucket", required=True)
    dr.add_argument("--user-pool-id", required=True, help="the pool whose backups are drilled")
    dr.add_argument("--prefix", default="backups")
    dr.add_argument("--manifest", help="drill this snapshot (default: the newest that passed validation)")
    dr.add_argument(
        "--keep", action="store_true", help="keep the scratch pool to inspect it (delete it after)"
    )
    fg = sub.add_parser(
        "forget",
        parents=[common],
        help="erase people from every snapshot and object version of a pool (a privacy request)",
    )
    fg.add_argument("--bucket", required=True)
    fg.add_argument("--user-pool-id", required=True)
    fg.add_argument("--prefix", default="backups")
    fg.add_argument("--username", action="append", default=[], help="a person to erase (repeatable)")
    fg.add_argument("--sub", action="append", default=[], help="a person to erase, by sub (repeatable)")
    fg.add_argument("--delete-from-pool", action="store_true", help="delete them from the live pool too")
    fg.add_argument("--kms-key-id")
    for name, ep in sorted(_plugins().items()):
        sub.add_parser(name, parents=[common], help=f"(from {ep.value.split(':')[0]})")
    return p


def _clients(args: argparse.Namespace) -> AwsClients:
    return AwsClients(region=args.region, endpoint_url=args.endpoint_url)


def _store(
    args: argparse.Namespace, clients: AwsClients, *, verify_by: VerifyBy = "verify_mac"
) -> SnapshotStore:
    key = args.signing_key or os.environ.get("COGNITO_BACKUP_SIGNING_KEY") or None
    signing = signing_for(
        clients, key, allow_unsigned=getattr(args, "allow_unsigned", False), verify_by=verify_by
    )
    store = SnapshotStore(clients.s3(), args.bucket, getattr(args, "kms_key_id", None), signing)
    store.use_bucket_default_key()
    return store


def _gateway(clients: AwsClients) -> CognitoGateway:
    return CognitoGateway(clients.cognito(), Pacer(dict(DEFAULT_QUOTAS)))


def _emit(args: argparse.Namespace, out: TextIO, data: Any, text: Sequence[str]) -> None:
    if args.json:
        out.write(json.dumps(data, default=str) + "\n")
    else:
        for line in text:
            out.write(line + "\n")


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    clients = _clients(args)
    # As the export Lambda: a base's signature is checked with GenerateMac, the export's one KMS right.
    store = _store(args, clients, verify_by="generate_mac")
    progress = Progress(err, "export")
    result = run_export(
        _gateway(clients),
        store,
        args.user_pool_id,
        options=ExportOptions(prefix=args.prefix, parallelism=args.parallelism),
        incremental=args.incremental,
        progress=progress.counts,
    )
    progress.done()
    c = result.counts
    _emit(
        args,
        out,
        result.model_dump(mode="json"),
        [
            f"{result.kind} snapshot {result.snapshot_id}: {c.users} users, {c.groups} groups, "
            f"{c.memberships} memberships"
            + (
                f"; deleted {c.users_deleted} users, {c.groups_deleted} groups, "
                f"{c.memberships_removed} memberships"
                if result.kind == "incremental"
                else ""
            ),
            f"s3://{store.bucket}/{result.manifest_key}",
            str(result.manifest_key),
        ],
    )
    return 0 if result.status == "complete" else 1


def cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .validate import validate_snapshot

    clients = _clients(args)
    report = validate_snapshot(_store(args, clients), args.manifest, record=not args.no_record)
    lines = [f"{'VALID' if report.valid else 'INVALID'}: {args.manifest}"]
    if report.signature == "unsigned":
        lines.append("  UNSIGNED (accepted by --allow-unsigned): nothing proves who wrote this snapshot")
    lines += [f"  - {f.problem}" for f in report.failures]
    _emit(args, out, report.model_dump(mode="json"), lines)
    return 0 if report.valid else 1


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .validate import verdict_of

    clients = _clients(args)
    store = _store(args, clients)
    store.check_bucket(pool_root(args.prefix, args.user_pool_id))
    rows: list[dict[str, Any]] = []
    for key in store.manifest_keys(args.prefix, args.user_pool_id):
        try:
            m: Manifest | None = store.read_manifest(key, verify=False)  # shown, not used
        except BackupError:
            m = None
        rows.append(
            {
                "manifest_key": key,
                "snapshot_id": m.snapshot_id if m else layout_snapshot_id(key),
                "kind": m.kind if m else "unreadable",
                "finished_at": m.finished_at.isoformat() if m else None,
                "counts": m.counts.model_dump() if m else None,
                "base_manifest_key": m.base_manifest_key if m else None,
                "validation": verdict_of(store, key) or "not validated",
            }
        )
    text = [f"{'SNAPSHOT':<22} {'KIND':<12} {'USERS':>8} {'GROUPS':>7} {'MEMBERS':>8} {'VERDICT':<14} BASE"]
    for r in rows:
        c = r["counts"] or {}
        base = layout_snapshot_id(r["base_manifest_key"]) if r["base_manifest_key"] else "-"
        text.append(
            f"{r['snapshot_id']:<22} {r['kind']:<12} {c.get('users', '-'):>8} {c.get('groups', '-'):>7} "
            f"{c.get('memberships', '-'):>8} {r['validation']:<14} {base}"
        )
    if not rows:
        text = [f"no snapshots of {args.user_pool_id} in s3://{args.bucket}/{args.prefix}"]
    _emit(args, out, rows, text)
    return 0


def cmd_restore(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .pacing import Deadline
    from .restore import RestoreOptions, run_restore
    from .restore.report import write_whole_json

    if args.idp_secrets and not args.create_target_pool:
        raise UsageError("--idp-secrets goes with --create-target-pool")
    clients = _clients(args)
    store = _store(args, clients)
    gateway = _gateway(clients)
    target_pool_id = args.target_user_pool_id
    rebuilt: dict[str, Any] | None = None
    if args.create_target_pool:
        # The bucket is read where it is (the environment's Region); --region is the new pool's.
        store = _store(args, AwsClients(endpoint_url=args.endpoint_url))
        rebuilt, target_pool_id = _create_target_pool(args, store, clients, gateway, out)
        if target_pool_id is None:
            return 0
    report = run_restore(
        gateway,
        store,
        args.manifest,
        target_pool_id,
        options=RestoreOptions(
            dry_run=args.dry_run,
            usernames=args.username or None,
            groups=args.group or None,
            conflict_policy=args.conflict_policy,
            password_strategy=args.password_strategy,
            force=args.force,
            allow_same_pool=args.allow_same_pool,
            mirror=args.mirror,
            verify=not args.no_verify,
        ),
        deadline=Deadline.never(),
    )
    lines = report.summary_lines()
    if rebuilt is not None:
        lines = [*lines, *_rebuild_lines(rebuilt)]
    if args.json:  # every per-user entry, read back from the report's parts as it is printed
        write_whole_json(store, report, out, {"rebuild": rebuilt} if rebuilt is not None else None)
    else:
        _emit(args, out, None, lines)
    return 0 if report.status == "complete" else 1


def _create_target_pool(
    args: argparse.Namespace, store: SnapshotStore, clients: AwsClients, gateway: CognitoGateway, out: TextIO
) -> tuple[dict[str, Any], str | None]:
    """The pool of `--create-target-pool`, made (or found, on a re-run) from a snapshot that
    has passed validation: nothing is created from a snapshot that does not. The dry run
    answers the blueprint and no pool id."""
    from .rebuild import Builder, load_idp_secrets, plan_from_snapshot

    plan = plan_from_snapshot(
        store,
        args.manifest,
        pool_name=args.create_target_pool,
        region=clients.region or "",
        account=str(clients.sts().get_caller_identity()["Account"]),
        idp_secrets=load_idp_secrets(args.idp_secrets) if args.idp_secrets else None,
        force=args.force,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        summary = plan.summary()
        _emit(args, out, {"dry_run": True, "create_target_pool": summary}, _blueprint_lines(summary))
        return summary, None
    result = Builder(gateway).build(plan)
    if not args.json:
        out.write(f"target_user_pool_id: {result.user_pool_id}\n")
        out.flush()
    return result.as_dict(), result.user_pool_id


def _blueprint_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        f"dry run: would create pool {summary['pool_name']!r} in {summary['region']} "
        f"from snapshot {summary['snapshot_id']}",
        f"  app clients: {', '.join(summary['app_clients']) or '-'}",
        f"  resource servers: {', '.join(summary['resource_servers']) or '-'}",
        f"  identity providers: {', '.join(summary['identity_providers']) or '-'}",
        f"  domain: {summary['domain'] or '-'}",
        f"  UI customisation: {', '.join(summary['ui_customizations']) or '-'}",
        f"  managed login branding: {', '.join(summary['managed_login_brandings']) or '-'}",
        f"  log delivery: {', '.join(summary['log_delivery']) or '-'}",
        f"  risk configuration: {', '.join(summary['risk_configurations']) or '-'}",
    ]
    return lines + _not_carried(summary["not_carried_over"])


def _rebuild_lines(rebuilt: dict[str, Any]) -> list[str]:
    verb = "created" if rebuilt["created_pool"] else "continued"
    lines = [f"{verb} pool {rebuilt['target_user_pool_id']} from the snapshot's configuration"]
    lines += [f"  client {old} -> {new}" for old, new in rebuilt["client_ids"].items()]
    return lines + _not_carried(rebuilt["not_carried_over"])


def _not_carried(references: list[dict[str, str]]) -> list[str]:
    if not references:
        return ["  everything in the snapshot's configuration was carried over"]
    return ["  not carried over:"] + [f"    {r['kind']} {r['name']}: {r['reason']}" for r in references]


def cmd_diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .incremental import diff_snapshots

    clients = _clients(args)
    result = diff_snapshots(_store(args, clients), args.from_key, args.to_key)
    _emit(args, out, result.as_dict(details=args.details), result.lines(details=args.details))
    return 0


def cmd_drill(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .drill import Drill, run_drill

    clients = _clients(args)
    store = _store(args, clients)
    store.check_bucket(pool_root(args.prefix, args.user_pool_id))
    drill = Drill(
        _gateway(clients),
        store,
        region=clients.region or "",
        account=str(clients.sts().get_caller_identity()["Account"]),
    )
    progress = Progress(err, "drill")
    record = run_drill(
        drill,
        args.prefix,
        args.user_pool_id,
        manifest_key=args.manifest,
        keep=args.keep,
        progress=lambda c: progress.counts(
            Counts(users=c.created, groups=c.groups_created, memberships=c.memberships_added)
        ),
    )
    progress.done()
    _emit(args, out, record.model_dump(mode="json"), [*record.summary_lines(), f"record: {record.key}"])
    return 0 if record.status == "passed" else 1


def cmd_forget(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .forget import Forget

    if not args.username and not args.sub:
        raise UsageError("name at least one person: --username U or --sub S (repeatable)")
    clients = _clients(args)
    progress = Progress(err, "forget")
    result = Forget(
        _store(args, clients),
        args.user_pool_id,
        prefix=args.prefix,
        usernames=args.username,
        subs=args.sub,
        gateway=_gateway(clients) if args.delete_from_pool else None,
        delete_from_pool=args.delete_from_pool,
        progress=progress.step,
    ).run()
    progress.done()
    _emit(args, out, result.model_dump(mode="json"), result.lines())
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
    "export": cmd_export,
    "validate": cmd_validate,
    "list": cmd_list,
    "restore": cmd_restore,
    "diff": cmd_diff,
    "drill": cmd_drill,
    "forget": cmd_forget,
}

# Commands other packages add (the demo, from tools/cognito_local, which the layer does not
# ship): entry points of this group, each `command(args, out, err) -> int`, its help the first
# line of its docstring. The core names none of them.
PLUGIN_GROUP = "cognito_backup.commands"


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in COMMANDS}


def _run_plugin(name: str, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        command = _plugins()[name].load()
    except ImportError as exc:  # its own dependencies (the demo: moto) are not installed
        raise UsageError(f"{name} needs the development extras: pip install 'cognito-backup[dev]'") from exc
    code: int = command(args, out, err)
    return code


def _quiet_logs(err: TextIO) -> None:
    """The core logs JSON for CloudWatch; on a terminal stdout carries only results, so
    logs go to stderr and only warnings and errors are shown."""
    from .observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(err)
    logger.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    _quiet_logs(err)
    try:
        if args.command in COMMANDS:
            return COMMANDS[args.command](args, out, err)
        return _run_plugin(args.command, args, out, err)
    except BackupError as exc:
        err.write(f"error: {exc}\n")
        return exc.exit_code
    except NoCredentialsError:
        err.write("error: no AWS credentials found (set AWS_PROFILE or the AWS_* variables)\n")
        return 1
    except BotoCoreError as exc:
        err.write(f"error: {type(exc).__name__}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
