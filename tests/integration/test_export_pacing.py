"""The pacer learns a quota lower than it was told, against the strict local Cognito.

The pacer believes the documented 30 UserList calls a second; the local Cognito gives 10
(another tool, or the application's own ListUsers, taking the rest). Pacer, gateway and
engine share one fake clock that moves only when someone sleeps, so the run is fast and the
assertions are on counts, never on elapsed time.
"""

from __future__ import annotations

import threading
from typing import Any

from cognito_backup.cognito import CognitoGateway
from cognito_backup.export import ExportOptions
from cognito_backup.pacing import DEFAULT_QUOTAS, Pacer
from cognito_backup.snapshot import run_export
from cognito_local.inprocess import strict_cognito
from cognito_local.seed import create_pool, seed_pool

USERS = 6000


class SharedClock:
    """Monotonic fake time: advanced by every sleep, read by everyone (thread-safe)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)


def test_an_export_converges_to_a_lower_quota_than_the_pacer_believes(aws: Any, store: Any) -> None:
    clock = SharedClock()
    assert DEFAULT_QUOTAS["UserList"] == 30.0
    cognito = aws.cognito()
    with strict_cognito(quotas={"UserList": 10}, clients=[cognito], clock=clock) as engine:
        with engine.quotas_paused():
            pool_id = create_pool(cognito, "paced")
            seeded = seed_pool(cognito, pool_id, users=USERS, groups=4, seed=7)
        engine.reset()
        pacer = Pacer(dict(DEFAULT_QUOTAS), clock=clock, sleep=clock.sleep)
        gateway = CognitoGateway(cognito, pacer, sleep=clock.sleep)

        result = run_export(gateway, store, pool_id, options=ExportOptions(parallelism=1))

        listed = engine.stats()["categories"]["UserList"]
    assert result.status == "complete"
    assert result.counts.users == USERS and result.counts.memberships == seeded.memberships
    # The pacer cut UserList down towards what the service gives, more than once (the first
    # cut, to 21/s, is not enough), and did not climb back to what it was told
    user_list = pacer.bucket("UserList")
    assert user_list is not None and user_list.cuts >= 3
    assert pacer.rates()["UserList"] < 20.0
    # Throttled calls are a small share: the first overload, then a few at each probe
    assert listed["throttled"] > 0
    assert listed["throttled"] / listed["calls"] < 0.05
    assert gateway.stats.throttled == engine.stats()["total"]["throttled"]
