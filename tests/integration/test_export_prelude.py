"""No serial prelude: the pool's configuration is read while the listing runs, and is in the
snapshot (and in every checkpoint) all the same."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from export_world import make_pool, read_records

from cognito_backup.cognito import CognitoGateway, Page
from cognito_backup.errors import AccessDeniedError
from cognito_backup.export import ExportOptions
from cognito_backup.models import ExportCheckpoint, Manifest, PoolConfigRecord
from cognito_backup.pacing import CountdownDeadline, Pacer
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore, checkpoint_key


class HeldConfigGateway(CognitoGateway):
    """Reading the configuration waits until the listing has fetched a page of users."""

    def __init__(self, client: Any, *, fail: bool = False, wait: float = 10.0) -> None:
        super().__init__(client, Pacer(quotas={}), base_delay=0.0)
        self.listing_started = threading.Event()
        self.config_overlapped: bool | None = None
        self.fail = fail
        self.wait = wait

    def pool_config(self, pool_id: str) -> PoolConfigRecord:
        self.config_overlapped = self.listing_started.wait(timeout=self.wait)
        if self.fail:
            raise AccessDeniedError("access denied to Cognito (AccessDeniedException)")
        return super().pool_config(pool_id)

    def list_users_page(self, pool_id: str, token: str | None, filter_: str | None = None) -> Page[Any]:
        page = super().list_users_page(pool_id, token, filter_)
        self.listing_started.set()
        return page


def test_the_configuration_is_read_while_users_are_listed(aws: Any, store: SnapshotStore) -> None:
    pool_id = make_pool(aws.cognito(), extra_users=10, groups=2, big_group=3)
    gateway = HeldConfigGateway(aws.cognito())

    result = run_export(gateway, store, pool_id)

    assert gateway.config_overlapped is True  # a serial prelude would have waited 10 s in vain
    assert result.status == "complete" and result.manifest_key
    manifest = Manifest.model_validate(store.get_json(result.manifest_key))
    configs = [r for r in read_records(store, manifest) if r.get("type") == "pool_config"]
    assert len(configs) == 1 and configs[0]["user_pool"]["Id"] == pool_id
    assert manifest.parts[0].kind == "config"  # numbered first, as before


def test_a_checkpoint_waits_for_the_configuration(aws: Any, store: SnapshotStore) -> None:
    pool_id = make_pool(aws.cognito(), extra_users=10, groups=2, big_group=3)
    # The run stops at its first boundary, before any listing, while the configuration is
    # still being read (it waits half a second for a listing that never comes)
    gateway = HeldConfigGateway(aws.cognito(), wait=0.5)

    first = run_export(gateway, store, pool_id, deadline=CountdownDeadline(0))

    assert first.status == "incomplete" and gateway.config_overlapped is False
    cp = ExportCheckpoint.model_validate(store.get_json(checkpoint_key("backups", pool_id, "export-full")))
    assert cp.phase == "groups" and [p.kind for p in cp.parts] == ["config"]
    plain = CognitoGateway(aws.cognito(), Pacer(quotas={}), base_delay=0.0)
    second = run_export(plain, store, pool_id)
    assert second.status == "complete" and second.snapshot_id == first.snapshot_id
    fresh = run_export(plain, store, pool_id, options=ExportOptions(prefix="fresh"))
    assert second.counts == fresh.counts and second.parts == fresh.parts


def test_a_configuration_that_cannot_be_read_fails_the_export(aws: Any, store: SnapshotStore) -> None:
    pool_id = make_pool(aws.cognito(), extra_users=2, groups=2, big_group=1)
    gateway = HeldConfigGateway(aws.cognito(), fail=True)

    with pytest.raises(AccessDeniedError):
        run_export(gateway, store, pool_id)

    assert gateway.config_overlapped is True
    assert store.get_json(checkpoint_key("backups", pool_id, "export-full")) is None
