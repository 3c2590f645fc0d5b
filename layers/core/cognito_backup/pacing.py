"""Client-side pacing to Cognito's per-category request-rate quotas, and deadlines.

Cognito's quotas are per account and Region and shared by every pool, so each
category gets one token bucket sized from configuration (the defaults are the
documented default quotas). Retries on TooManyRequestsException remain the safety
net; the pacer exists so that they are rare.

Each bucket refills at the quota's rate and holds `burst_seconds` of it. A bucket that
refills no faster than the service's and holds less than it never spends a token the
service does not have, whatever the pattern of calls: the service's bucket (modelled by
the strict local Cognito as one second of quota) always holds at least as many tokens as
ours, less what scheduling jitter moves between the two. So the burst is kept just under
one second (DEFAULT_BURST_SECONDS): it lets a run spend at once the budget the service
accrued while the run was doing something else (reading the pool's configuration,
waiting on a slow call), instead of leaving it unused; docs/benchmarks.md measures it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Default requests per second, from the Cognito quotas page.
DEFAULT_QUOTAS: dict[str, float] = {
    "UserList": 30.0,
    "UserPoolResourceRead": 20.0,
    "UserRead": 120.0,
    "UserCreation": 50.0,
    "UserUpdate": 25.0,
    "UserAccountRecovery": 30.0,
    "UserPoolResourceUpdate": 15.0,
    "UserDeletion": 25.0,
    "UserPoolRead": 15.0,
    "UserPoolUpdate": 15.0,
    "UserPoolClientUpdate": 15.0,
    "UserAuthentication": 120.0,
}

# Seconds of quota a bucket may hold: under the one second the service is modelled with,
# by a margin for scheduling jitter between our clock and its admission.
DEFAULT_BURST_SECONDS = 0.8

OPERATION_CATEGORY: dict[str, str] = {
    "list_users": "UserList",
    "list_users_in_group": "UserList",
    "list_groups": "UserPoolResourceRead",
    "list_identity_providers": "UserPoolResourceRead",
    "get_user_pool_mfa_config": "UserPoolResourceRead",
    "describe_user_pool": "UserPoolResourceRead",
    "describe_user_pool_client": "UserPoolResourceRead",
    "list_user_pool_clients": "UserPoolResourceRead",
    "describe_identity_provider": "UserPoolResourceRead",
    "list_resource_servers": "UserPoolResourceRead",
    "describe_resource_server": "UserPoolResourceRead",
    "describe_user_pool_domain": "UserPoolResourceRead",
    "get_group": "UserPoolResourceRead",
    "admin_list_groups_for_user": "UserPoolResourceRead",
    "admin_get_user": "UserRead",
    "admin_create_user": "UserCreation",
    "admin_add_user_to_group": "UserUpdate",
    "admin_remove_user_from_group": "UserUpdate",
    "admin_disable_user": "UserUpdate",
    "admin_enable_user": "UserUpdate",
    "admin_update_user_attributes": "UserUpdate",
    "admin_delete_user_attributes": "UserUpdate",
    "admin_link_provider_for_user": "UserUpdate",
    "admin_set_user_password": "UserAccountRecovery",
    "admin_reset_user_password": "UserAccountRecovery",
    "create_group": "UserPoolResourceUpdate",
    "update_group": "UserPoolResourceUpdate",
    "delete_group": "UserPoolResourceUpdate",
    "add_custom_attributes": "UserPoolResourceUpdate",
    "admin_delete_user": "UserDeletion",
    # A rebuild (rebuild.py): a few calls per pool, paced all the same.
    "list_user_pools": "UserPoolRead",
    "create_user_pool": "UserPoolUpdate",
    "set_user_pool_mfa_config": "UserPoolUpdate",
    "create_resource_server": "UserPoolResourceUpdate",
    "create_identity_provider": "UserPoolResourceUpdate",
    "create_user_pool_domain": "UserPoolResourceUpdate",
    "create_user_pool_client": "UserPoolClientUpdate",
    # The migration trigger's password check against the source pool.
    "admin_initiate_auth": "UserAuthentication",
}


class TokenBucket:
    """A thread-safe token bucket: `acquire()` blocks until a token is free."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # A small burst: enough to keep several workers busy, not enough to trip the
        # service's own bucket when another client shares the quota.
        self.capacity = capacity if capacity is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self) -> float:
        """Take one token, waiting as needed. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 1.0 - 1e-9:  # float dust must not stall the loop
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return waited
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait

    def penalize(self) -> None:
        """After a throttle: empty the bucket so every worker backs off together."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)


@dataclass
class Pacer:
    """One token bucket per quota category; unknown categories are not paced.

    `fraction` is the share of each quota this client may use (several pools or tools
    sharing the account); `burst_seconds` how much of its rate a bucket may hold.
    """

    quotas: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    fraction: float = 1.0
    burst_seconds: float = DEFAULT_BURST_SECONDS
    _buckets: dict[str, TokenBucket] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def bucket(self, category: str) -> TokenBucket | None:
        with self._lock:
            if category not in self._buckets:
                rate = self.quotas.get(category)
                if rate is None:
                    return None
                rate *= self.fraction
                self._buckets[category] = TokenBucket(rate, capacity=max(1.0, rate * self.burst_seconds))
            return self._buckets[category]

    def acquire(self, operation: str) -> None:
        category = OPERATION_CATEGORY.get(operation)
        bucket = self.bucket(category) if category else None
        if bucket is not None:
            bucket.acquire()

    def throttled(self, operation: str) -> None:
        category = OPERATION_CATEGORY.get(operation)
        bucket = self.bucket(category) if category else None
        if bucket is not None:
            bucket.penalize()


class Deadline:
    """When a run must stop to checkpoint. `expired()` is checked between pages."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    @classmethod
    def never(cls) -> Deadline:
        return cls(None)

    @classmethod
    def from_lambda_context(cls, context: object, margin_seconds: float = 60.0) -> Deadline:
        get_remaining = getattr(context, "get_remaining_time_in_millis", None)
        if get_remaining is None:
            return cls.never()
        return cls(max(0.0, get_remaining() / 1000.0 - margin_seconds))

    def expired(self) -> bool:
        return self._end is not None and self._clock() >= self._end

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - self._clock())


class CountdownDeadline(Deadline):
    """Expires after `checks` calls of `expired()`: cuts a run at exact points in tests."""

    def __init__(self, checks: int) -> None:
        super().__init__(None)
        self._left = checks

    def expired(self) -> bool:
        self._left -= 1
        return self._left < 0
