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

The configured rate is a ceiling, not a promise: the application's own calls share the
account's quotas, the category table may be wrong for an operation, a quota may be lower.
So each bucket learns (`LearningBucket`): throttles cut its rate, quiet time restores it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Default requests per second per category (docs/architecture.md, "Cognito quotas the code assumes",
# from the Cognito quotas page, "API operation categories and request rate quotas").
DEFAULT_QUOTAS: dict[str, float] = {
    "UserList": 30.0,
    "UserCreation": 50.0,
    "UserUpdate": 25.0,
    "UserResourceUpdate": 25.0,
    "UserResourceRead": 50.0,
    "UserAccountRecovery": 30.0,
    "UserRead": 120.0,
    "UserPoolRead": 15.0,
    "UserPoolUpdate": 15.0,
    "UserPoolResourceRead": 20.0,
    "UserPoolResourceUpdate": 15.0,
    "UserPoolClientRead": 15.0,
    "UserPoolClientUpdate": 15.0,
    "UserAuthentication": 120.0,
}

# Seconds of quota a bucket may hold: under the one second the service is modelled with,
# by a margin for scheduling jitter between our clock and its admission.
DEFAULT_BURST_SECONDS = 0.8

# The one table of which quota category each operation draws on. Source: docs/architecture.md's table
# (the Cognito quotas page). Where AWS's page is not explicit, that table is followed and the
# pacer's learning (below) corrects a wrong guess at run time:
# - AdminAddUserToGroup / AdminRemoveUserFromGroup: UserResourceUpdate ("update user resource
#   information, such as group"), not UserUpdate; unconfirmed.
# - AdminListGroupsForUser: UserResourceRead. DescribeUserPool: UserPoolRead.
# - AdminDeleteUser: UserUpdate (the table lists it there; AWS has no UserDeletion category).
# - GetUserPoolMfaConfig, DescribeUserPoolDomain, the identity-provider and resource-server
#   reads are not in that table: kept in UserPoolResourceRead (pool resources).
# - The hosted UI, branding and threat-protection settings are pool resources:
#   GetUICustomization, DescribeManagedLoginBrandingByClient, DescribeRiskConfiguration read
#   UserPoolResourceRead; SetUICustomization, CreateManagedLoginBranding, SetRiskConfiguration
#   write UserPoolResourceUpdate. Log delivery is a setting of the pool itself:
#   GetLogDeliveryConfiguration is UserPoolRead, SetLogDeliveryConfiguration UserPoolUpdate.
#   Their rows were not found in the copy of the quotas page read here: placed by analogy with
#   the other pool-resource and pool-setting calls, unconfirmed; the learning corrects a miss.
OPERATION_CATEGORY: dict[str, str] = {
    "list_users": "UserList",
    "list_users_in_group": "UserList",
    "list_groups": "UserPoolResourceRead",
    "get_group": "UserPoolResourceRead",
    "list_identity_providers": "UserPoolResourceRead",
    "describe_identity_provider": "UserPoolResourceRead",
    "list_resource_servers": "UserPoolResourceRead",
    "describe_resource_server": "UserPoolResourceRead",
    "get_user_pool_mfa_config": "UserPoolResourceRead",
    "describe_user_pool_domain": "UserPoolResourceRead",
    "get_ui_customization": "UserPoolResourceRead",
    "describe_managed_login_branding_by_client": "UserPoolResourceRead",
    "describe_risk_configuration": "UserPoolResourceRead",
    "describe_user_pool": "UserPoolRead",
    "get_log_delivery_configuration": "UserPoolRead",
    "list_user_pool_clients": "UserPoolClientRead",
    "describe_user_pool_client": "UserPoolClientRead",
    "admin_list_groups_for_user": "UserResourceRead",
    "admin_get_user": "UserRead",
    "admin_create_user": "UserCreation",
    "admin_add_user_to_group": "UserResourceUpdate",
    "admin_remove_user_from_group": "UserResourceUpdate",
    "admin_disable_user": "UserUpdate",
    "admin_enable_user": "UserUpdate",
    "admin_update_user_attributes": "UserUpdate",
    "admin_delete_user_attributes": "UserUpdate",
    "admin_link_provider_for_user": "UserUpdate",
    "admin_delete_user": "UserUpdate",
    "admin_set_user_password": "UserAccountRecovery",
    "admin_reset_user_password": "UserAccountRecovery",
    "create_group": "UserPoolResourceUpdate",
    "update_group": "UserPoolResourceUpdate",
    "delete_group": "UserPoolResourceUpdate",
    "add_custom_attributes": "UserPoolResourceUpdate",
    # A rebuild (rebuild.py): a few calls per pool, paced all the same.
    "list_user_pools": "UserPoolRead",
    "create_user_pool": "UserPoolUpdate",
    "set_user_pool_mfa_config": "UserPoolUpdate",
    "create_resource_server": "UserPoolResourceUpdate",
    "create_identity_provider": "UserPoolResourceUpdate",
    "create_user_pool_domain": "UserPoolResourceUpdate",
    "create_user_pool_client": "UserPoolClientUpdate",
    "set_ui_customization": "UserPoolResourceUpdate",
    "create_managed_login_branding": "UserPoolResourceUpdate",
    "set_risk_configuration": "UserPoolResourceUpdate",
    "set_log_delivery_configuration": "UserPoolUpdate",
    # The migration trigger's password check against the source pool.
    "admin_initiate_auth": "UserAuthentication",
}

# How a category's rate learns from throttling (AIMD with a memory): a throttle cuts the rate to
# CUT_FACTOR of what it was, never below FLOOR_SHARE of the configured rate. Only a call let go
# after the last cut can cut again: the calls in flight when the service started throttling come
# back throttled together, and they are one overload, not several. The rate the first cut of an
# overload was made at is its knee: the service said no there, and not far below it. After
# HOLD_SECONDS without a throttle the rate climbs back, fast (FAST_RECOVERY_SHARE of the
# configured rate per second) to KNEE_SHARE of the knee, then slowly (PROBE_SHARE) to the knee,
# where the next overload is likely, then at RECOVERY_SHARE up to the configured rate, never above
# it. Without the memory a cut cost ~10 s at two thirds of the budget (a restore whose memberships
# share UserUpdate's budget, docs/benchmarks.md); with it, about a second. A wrong category table,
# the application's own traffic or a lower quota than configured thus converge to what the
# service gives, with few throttled calls (tests/unit/test_pacing.py simulates each).
CUT_FACTOR = 0.7
FLOOR_SHARE = 0.05
HOLD_SECONDS = 1.0
KNEE_SHARE = 0.85
FAST_RECOVERY_SHARE = 0.5
PROBE_SHARE = 0.01
RECOVERY_SHARE = 0.05


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


class LearningBucket(TokenBucket):
    """A token bucket whose rate learns from throttling (AIMD with a knee, see CUT_FACTOR).

    `ceiling` is the configured rate (quota x share), never exceeded; the bucket starts there.
    Its capacity follows the rate (`burst_seconds` of it). Deterministic given its clock.
    """

    def __init__(
        self,
        ceiling: float,
        *,
        burst_seconds: float = DEFAULT_BURST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(ceiling, capacity=max(1.0, ceiling * burst_seconds), clock=clock, sleep=sleep)
        self.ceiling = ceiling
        self.burst_seconds = burst_seconds
        self.floor = ceiling * FLOOR_SHARE
        self.cuts = 0  # also the epoch a token is given in: see `take`
        self.knee = ceiling  # the rate the last overload began at (see CUT_FACTOR)
        self._quiet_from = float("-inf")  # recovery resumes from here

    def _refill(self) -> None:
        now = self._clock()
        self._tokens += (now - self._last) * self.rate
        grow_from = max(self._last, self._quiet_from)
        if self.rate < self.ceiling and now > grow_from:
            self._grow(now - grow_from)
        self.capacity = max(1.0, self.rate * self.burst_seconds)
        self._tokens = min(self.capacity, self._tokens)
        self._last = now

    def _grow(self, seconds: float) -> None:
        """Climb back for `seconds`: fast below the knee's neighbourhood, slowly through it."""
        while seconds > 0 and self.rate < self.ceiling:
            if self.rate < KNEE_SHARE * self.knee:
                share, limit = FAST_RECOVERY_SHARE, KNEE_SHARE * self.knee
            elif self.rate < self.knee:
                share, limit = PROBE_SHARE, self.knee
            else:
                share, limit = RECOVERY_SHARE, self.ceiling
            speed, limit = share * self.ceiling, min(limit, self.ceiling)
            needed = (limit - self.rate) / speed
            if needed >= seconds:
                self.rate += speed * seconds
                return
            self.rate, seconds = limit, seconds - needed

    def take(self) -> int:
        """Take one token, waiting as needed. Returns the epoch (cuts so far) it was given in:
        pass it to `penalize` if the call it paid for is throttled."""
        self.acquire()
        with self._lock:
            return self.cuts

    def penalize(self, epoch: int | None = None) -> None:
        """After a throttle: cut the rate, hold it, empty the bucket so every worker backs off.

        A call whose token was given before the last cut (`epoch` older than `cuts`) was
        part of the overload already answered: it holds and empties, but does not cut again.
        Without an epoch every throttle cuts."""
        with self._lock:
            self._refill()
            if epoch is None or epoch >= self.cuts:
                if self._last >= self._quiet_from:  # a new overload, not a second cut of the last
                    self.knee = self.rate
                self.rate = max(self.floor, self.rate * CUT_FACTOR)
                self.capacity = max(1.0, self.rate * self.burst_seconds)
                self.cuts += 1
            self._quiet_from = self._last + HOLD_SECONDS
            self._tokens = min(self._tokens, 0.0)


@dataclass
class Pacer:
    """One learning token bucket per quota category; unknown categories are not paced.

    `fraction` is the share of each quota this client may use: the deployment's
    QUOTA_FRACTION times the run kind's share (a scheduled export leaves headroom for the
    application's own traffic, a restore takes all: see docs/architecture.md, "Pacing").
    `burst_seconds` is how much of its rate a bucket may hold; `clock` and `sleep` are
    injectable for tests.
    """

    quotas: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    fraction: float = 1.0
    burst_seconds: float = DEFAULT_BURST_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _buckets: dict[str, LearningBucket] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def bucket(self, category: str) -> LearningBucket | None:
        with self._lock:
            if category not in self._buckets:
                rate = self.quotas.get(category)
                if rate is None:
                    return None
                self._buckets[category] = LearningBucket(
                    rate * self.fraction, burst_seconds=self.burst_seconds, clock=self.clock, sleep=self.sleep
                )
            return self._buckets[category]

    def acquire(self, operation: str) -> int | None:
        """Wait for the operation's category; returns the epoch to give `throttled`."""
        category = OPERATION_CATEGORY.get(operation)
        bucket = self.bucket(category) if category else None
        return bucket.take() if bucket is not None else None

    def throttled(self, operation: str, epoch: int | None = None) -> None:
        """The call (paced in `epoch`, from `acquire`) was throttled: learn from it."""
        category = OPERATION_CATEGORY.get(operation)
        bucket = self.bucket(category) if category else None
        if bucket is not None:
            bucket.penalize(epoch)

    def rates(self) -> dict[str, float]:
        """The current (learnt) rate of each category used so far."""
        with self._lock:
            return {name: b.rate for name, b in self._buckets.items()}


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
