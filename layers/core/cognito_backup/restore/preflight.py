"""Preflight: every check that can refuse a restore (reads only), and the context it finds.

A refusal raises RestoreRefusedError before anything is written, to the target or the bucket
(a dry run records no verdict either). The context holds what every later step needs: the
snapshot's view, the target's settings, the subset asked for.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..chain import Link, PointInTimeView, open_view, resolve_chain
from ..cognito import CognitoGateway
from ..erasure import require_cleared
from ..errors import (
    BackupError,
    ErasurePendingError,
    PoolNotFoundError,
    RestoreRefusedError,
    SignatureError,
    UsageError,
)
from ..models import GroupRecord, PoolConfigRecord, UserRecord
from ..restore_models import RestoreOptions
from ..restore_rules import (
    AttributePlan,
    UsernameScheme,
    custom_attribute_plan,
    mutability,
    password_min_length,
    username_setting_differences,
)
from ..store import SnapshotStore, layout_prefix
from .memberships import MembershipIndex


def _refuse(reason: str) -> RestoreRefusedError:
    return RestoreRefusedError(f"restore refused: {reason}. Nothing was written.")


def per_item(exc: BackupError) -> bool:
    """Whether an error concerns one user or group (reported) or the whole run (raised): the
    error says so itself (`BackupError.scope`, set where it is raised)."""
    return exc.scope == "record"


def why(exc: BackupError) -> str:
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- preflight


@dataclass
class Subset:
    usernames: set[str]  # the snapshot's usernames of the users to restore
    groups: set[str]  # the groups asked for, and every group those users are members of
    not_found: list[str]  # requested names that match no user of the snapshot


@dataclass
class RestoreContext:
    """What the preflight found; everything the phases need to know."""

    manifest_key: str
    chain: list[Link]
    view: PointInTimeView
    source_pool: dict[str, Any]
    target_pool: dict[str, Any]
    target_pool_id: str
    options: RestoreOptions
    scheme: UsernameScheme
    attributes: AttributePlan
    mutable: dict[str, bool]
    providers: frozenset[str]
    min_password_length: int
    _subset: Subset | None = field(default=None, repr=False)

    @property
    def snapshot_id(self) -> str:
        return self.chain[-1].manifest.snapshot_id

    @property
    def source_pool_id(self) -> str:
        return self.chain[-1].manifest.user_pool_id

    @property
    def signature(self) -> str:
        """signed, or unsigned when some manifest of the chain has no signature (allow_unsigned)."""
        return "unsigned" if any(link.manifest.signature is None for link in self.chain) else "signed"

    @property
    def prefix(self) -> str:
        return layout_prefix(self.manifest_key, self.source_pool_id)

    @property
    def named_groups(self) -> frozenset[str]:
        """The groups asked for by name (`groups`): restored with every member they had."""
        return frozenset(self.options.groups or ())

    def subset(self) -> Subset | None:
        """The users to restore: those named, and every member of the groups named."""
        requested, named = self.options.usernames, self.named_groups
        if requested is None and not named:
            return None
        if self._subset is None:
            wanted = {self.scheme.fold(n): n for n in requested or ()}
            found: set[str] = set()
            usernames: set[str] = set()
            if named:
                usernames = {m.username for m in self.view.memberships() if m.group in named}
            if wanted:
                for user in self.view.users():
                    hit = self.scheme.keys(user) & wanted.keys()
                    if hit:
                        usernames.add(user.username)
                        found |= hit
            groups = set(named) | {m.group for m in self.view.memberships() if m.username in usernames}
            self._subset = Subset(usernames, groups, [n for k, n in wanted.items() if k not in found])
        return self._subset

    def users(self) -> Iterator[UserRecord]:
        subset = self.subset()
        for user in self.view.users():
            if subset is None or user.username in subset.usernames:
                yield user

    def groups(self) -> Iterator[GroupRecord]:
        subset = self.subset()
        for group in self.view.groups():
            if subset is None or group.name in subset.groups:
                yield group

    def windows(self, users: Iterator[UserRecord]) -> Iterator[tuple[list[UserRecord], dict[str, list[str]]]]:
        """Users in windows, each with its users' memberships: memory stays bounded by the
        window; the memberships are read once, into an on-disk index (memberships.py)."""
        index: MembershipIndex | None = None
        try:
            while True:
                window = list(islice(users, self.options.window_size))
                if not window:
                    return
                if index is None:
                    index = MembershipIndex(self.view.memberships())
                yield window, index.of(u.username for u in window)
        finally:
            if index is not None:
                index.close()


def preflight(
    gateway: CognitoGateway,
    store: SnapshotStore,
    manifest_key: str,
    target_pool_id: str,
    options: RestoreOptions,
) -> RestoreContext:
    """Every check that can refuse the restore; reads only (a dry run records no verdict)."""
    if not target_pool_id:
        raise UsageError("a target user pool id is required")
    store.check_bucket(manifest_key)
    try:
        # Every manifest of the chain, down to the full snapshot, is verified with the configured
        # signing key as it is read: first, before any verdict tag is believed, whatever `force`.
        chain = resolve_chain(store, manifest_key)
    except SignatureError as exc:
        raise _refuse(f"{exc}; the snapshot is not the exports' own") from exc
    source_id = chain[-1].manifest.user_pool_id
    prefix = layout_prefix(manifest_key, source_id)
    try:
        # A snapshot that may still hold a forgotten person is never restored (erasure.py).
        require_cleared(store, prefix, source_id, [(link.key, link.manifest) for link in chain])
    except ErasurePendingError as exc:
        raise _refuse(str(exc).removesuffix(" Nothing was written.")) from exc
    if options.mirror and (options.usernames or options.groups):
        raise _refuse(
            "mirror removes everything the snapshot lacks, so it restores a whole pool: it cannot be "
            "combined with usernames or groups"
        )
    if target_pool_id == source_id and not options.allow_same_pool:
        raise _refuse(
            f"the target is the snapshot's own pool {source_id}; restoring into it needs allow_same_pool "
            "(--allow-same-pool)"
        )
    try:
        target_pool = gateway.describe_pool(target_pool_id)
    except PoolNotFoundError as exc:
        raise PoolNotFoundError(
            f"target user pool {target_pool_id} does not exist: create it first, with the same "
            "username settings as the snapshot's pool. Nothing was written."
        ) from exc
    # The target checks come first, so that a refused restore does not even record a verdict.
    view, config = _readable_view(store, manifest_key)
    if config is not None:
        attributes = _check_target(config.user_pool, target_pool, target_pool_id)
    snapshot_id = chain[-1].manifest.snapshot_id
    groups_checked = view is not None and _check_groups(view, options, snapshot_id, tolerant=True)
    check_verdicts(store, chain, options)
    if view is None or config is None:  # unreadable, yet valid or forced: read again, let it raise
        view = open_view(store, manifest_key)
        config = view.config()
        if config is None:
            raise _refuse(f"snapshot {snapshot_id} holds no pool configuration")
        attributes = _check_target(config.user_pool, target_pool, target_pool_id)
    if not groups_checked:
        _check_groups(view, options, snapshot_id)
    source_pool = config.user_pool
    return RestoreContext(
        manifest_key=manifest_key,
        chain=chain,
        view=view,
        source_pool=source_pool,
        target_pool=target_pool,
        target_pool_id=target_pool_id,
        options=options,
        scheme=UsernameScheme.of(target_pool),
        attributes=attributes,
        mutable={**mutability(source_pool), **mutability(target_pool)},
        providers=frozenset(gateway.identity_provider_names(target_pool_id)),
        min_password_length=password_min_length(target_pool),
    )


def _readable_view(
    store: SnapshotStore, manifest_key: str
) -> tuple[PointInTimeView | None, PoolConfigRecord | None]:
    """The snapshot's view and pool configuration; None when they cannot be read (the
    validator, which runs next when there is no verdict yet, then says why)."""
    try:
        view = open_view(store, manifest_key)
        return view, view.config()
    except (BackupError, OSError, EOFError, ValueError, zlib.error):
        return None, None


def _check_target(
    source_pool: dict[str, Any], target_pool: dict[str, Any], target_pool_id: str
) -> AttributePlan:
    differences = username_setting_differences(source_pool, target_pool)
    if differences:
        raise _refuse(
            f"target pool {target_pool_id} differs in creation-only settings that change what a username "
            f"means ({'; '.join(differences)}); create the target with the snapshot's settings"
        )
    attributes = custom_attribute_plan(source_pool, target_pool)
    if attributes.conflicts:
        raise _refuse(f"custom attributes conflict: {'; '.join(attributes.conflicts)}")
    return attributes


def _check_groups(
    view: PointInTimeView, options: RestoreOptions, snapshot_id: str, *, tolerant: bool = False
) -> bool:
    """Refuses a restore of groups the snapshot does not hold. True once checked; False
    (tolerant only) when the snapshot's groups cannot be read: the validator then says why."""
    if not options.groups:
        return True
    wanted = set(options.groups)
    try:
        found = {group.name for group in view.groups() if group.name in wanted}
    except (BackupError, OSError, EOFError, ValueError, zlib.error):
        if tolerant:
            return False
        raise
    missing = [name for name in options.groups if name not in found]
    if missing:
        raise _refuse(
            f"no group {', '.join(repr(n) for n in missing)} in snapshot {snapshot_id} (group names are "
            "case-sensitive; `cognito-backup diff --details` from a snapshot before the loss to one after "
            "names the groups removed)"
        )
    return True


def check_verdicts(store: SnapshotStore, chain: list[Link], options: RestoreOptions) -> None:
    """Refuses (RestoreRefusedError, nothing written) a chain with a failed verdict, or whose
    last snapshot was never validated and does not validate now (recorded unless a dry run,
    so that what runs next on it does not validate it again); `force` overrides."""
    from ..validate import validate_snapshot, verdict_of

    verdicts = {link.key: verdict_of(store, link.key) for link in chain}
    failed = [link.manifest.snapshot_id for link in chain if verdicts[link.key] == "failed"]
    if failed and not options.force:
        raise _refuse(
            f"snapshot {', '.join(failed)} failed validation (see its validation-report.json); "
            "force restores it anyway"
        )
    last = chain[-1]
    if verdicts[last.key] is None:
        report = validate_snapshot(store, last.key, record=not options.dry_run)
        if not report.valid and not options.force:
            first = report.failures[0].problem if report.failures else "no detail"
            raise _refuse(
                f"snapshot {last.manifest.snapshot_id} had never been validated and is invalid "
                f"({len(report.failures)} problem(s); first: {first})"
            )
