"""The faults Cognito and S3 really produce, decided per call: 500s, resets, throttling storms.

Transport-neutral: a `FaultPlan` only decides; the transports act. In-process (`inprocess`) a
500 *after the effect* means moto's stubber is run for the request and its answer thrown away;
over HTTP (`server`) the request is passed to moto and the 500 sent instead of moto's answer. A
*reset* is a connection dropped before the request reached the service: in-process the hook
raises botocore's `ConnectionClosedError`, over HTTP the socket is shut.

Reproducible: whether a call fails depends only on the seed, the operation, the request's
parameters (less the volatile ones: pool ids, pagination tokens, passwords) and how many times
that same request was seen before. So the same run meets the same faults whatever the order in
which parallel workers send their calls, and a retry of a failed call is a fresh draw. (For S3
the request is its operation and method only: object keys hold timestamps, so S3 faults repeat
when the S3 calls come in the same order, as an export's do.)

Storms are timed by the engine's clock (injectable): from the plan's origin, a storm starts
every `storm_every` seconds and lasts `storm_seconds`, during which every quota is multiplied by
`storm_fraction`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["before", "after", "reset", "storm"]
FAULT_KINDS: tuple[FaultKind, ...] = ("before", "after", "reset", "storm")

# Request parameters that differ between two runs of the same work (moto makes up pool and
# client ids; its pagination tokens hold a per-process hash; restores send random passwords):
# left out of a request's identity, so that a run meets the same faults every time.
VOLATILE_PARAMETERS = frozenset(
    {"UserPoolId", "ClientId", "PaginationToken", "NextToken", "Password", "TemporaryPassword"}
)


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. The default is nothing."""

    rate: float = 0.0  # share of Cognito calls that fail with HTTP 500 InternalErrorException
    after_effect: float = 0.5  # share of those failures that happen AFTER moto applied the call (answer lost)
    reset_rate: float = 0.0  # share of calls whose connection is dropped (before the effect)
    storm_every: float = 0.0  # seconds between throttling storms (0 = none)
    storm_seconds: float = 0.0  # how long a storm lasts
    storm_fraction: float = 0.1  # quota multiplier during a storm
    seed: int = 0
    operations: frozenset[str] | None = None  # only these operations (None = every operation)

    def __post_init__(self) -> None:
        for name in ("rate", "after_effect", "reset_rate", "storm_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value}")
        if self.rate + self.reset_rate > 1.0:
            raise ValueError("Faults.rate + Faults.reset_rate must not exceed 1")
        if self.storm_every < 0 or self.storm_seconds < 0:
            raise ValueError("storm_every and storm_seconds must not be negative")
        if self.operations is not None and not isinstance(self.operations, frozenset):
            object.__setattr__(self, "operations", frozenset(self.operations))

    @property
    def storms(self) -> bool:
        return self.storm_every > 0 and self.storm_seconds > 0

    @property
    def active(self) -> bool:
        return self.rate > 0 or self.reset_rate > 0 or self.storms

    def covers(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


def request_identity(operation: str, params: Mapping[str, Any]) -> bytes:
    """What makes two requests "the same request" for the fault draw."""
    stable = {k: v for k, v in params.items() if k not in VOLATILE_PARAMETERS}
    text = json.dumps([operation, stable], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _uniforms(seed: int, identity: bytes, occurrence: int) -> tuple[float, float, float]:
    digest = hashlib.blake2b(
        identity + occurrence.to_bytes(8, "big"), digest_size=24, key=str(seed).encode()[:64]
    ).digest()
    a, b, c = (int.from_bytes(digest[i : i + 8], "big") / 2.0**64 for i in (0, 8, 16))
    return a, b, c


@dataclass
class _FaultCounts:
    by_operation: dict[str, dict[FaultKind, int]] = field(default_factory=dict)

    def add(self, operation: str, kind: FaultKind) -> None:
        counts = self.by_operation.setdefault(operation, dict.fromkeys(FAULT_KINDS, 0))
        counts[kind] += 1


class FaultPlan:
    """Decides, call by call, which fault a call meets; counts what it injected. Thread-safe."""

    def __init__(self, faults: Faults | None = None, origin: float = 0.0) -> None:
        self.faults = faults or Faults()
        self.origin = origin
        self._lock = threading.Lock()
        self._seen: dict[bytes, int] = {}
        self._counts = _FaultCounts()

    def restart(self, origin: float) -> None:
        """Forget every request seen and every count: the next call draws as the first did."""
        with self._lock:
            self.origin = origin
            self._seen.clear()
            self._counts = _FaultCounts()

    def draw(self, operation: str, params: Mapping[str, Any]) -> FaultKind | None:
        """ "reset", "before", "after" or None for one call (storms are decided by `quota_factor`)."""
        faults = self.faults
        if (faults.rate <= 0 and faults.reset_rate <= 0) or not faults.covers(operation):
            return None
        identity = request_identity(operation, params)
        with self._lock:
            occurrence = self._seen.get(identity, 0)
            self._seen[identity] = occurrence + 1
        u_reset, u_error, u_after = _uniforms(faults.seed, identity, occurrence)
        if u_reset < faults.reset_rate:
            return "reset"
        if u_error < faults.rate:
            return "after" if u_after < faults.after_effect else "before"
        return None

    def in_storm(self, now: float) -> bool:
        faults = self.faults
        if not faults.storms:
            return False
        elapsed = now - self.origin
        return elapsed >= faults.storm_every and elapsed % faults.storm_every < faults.storm_seconds

    def quota_factor(self, operation: str, now: float) -> float:
        """The multiplier of the operation's quota at `now` (1.0 outside storms)."""
        if self.faults.covers(operation) and self.in_storm(now):
            return self.faults.storm_fraction
        return 1.0

    def count(self, operation: str, kind: FaultKind) -> None:
        with self._lock:
            self._counts.add(operation, kind)

    def stats(self) -> dict[str, Any]:
        """Faults injected per kind, in total and per operation."""
        with self._lock:
            ops = {op: dict(c) for op, c in sorted(self._counts.by_operation.items())}
        total = {kind: sum(c[kind] for c in ops.values()) for kind in FAULT_KINDS}
        return {"total": total, "operations": ops}
