"""Every error this tool raises on purpose, in one place. Adapters translate AWS errors into
these by error code, never by message text.

Each error says what it does to a run that meets it while working through records (`scope`):
`"run"` stops the run (it is resumed from its checkpoint, never reported done: throttling that
outlasted every retry, a lost connection, denied access, a vanished pool, S3 trouble), and
`"record"` fails only the user or group at hand, which the report lists (a definite refusal
of one request). The class gives the default; the place that raises it may say otherwise (the
Cognito adapter does, by error code). `exit_code` is what the CLI exits with.

The errors built from a report (a validation, a restore, a drill) describe what they read of
it as a Protocol: this module imports no other of the package (they all import it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

Scope = Literal["run", "record"]


class _Failure(Protocol):
    @property
    def part(self) -> str | None: ...


class _ValidationReport(Protocol):  # validate.ValidationReport
    @property
    def manifest_key(self) -> str: ...
    @property
    def snapshot_id(self) -> str | None: ...
    @property
    def failures(self) -> Sequence[_Failure]: ...


class _Counts(Protocol):
    @property
    def failed(self) -> int: ...


class _RestoreAnswer(Protocol):  # handlers.RestoreAnswer
    @property
    def snapshot_id(self) -> str: ...
    @property
    def target_user_pool_id(self) -> str: ...
    @property
    def failures(self) -> int: ...
    @property
    def counts(self) -> _Counts: ...
    @property
    def differences(self) -> int: ...
    @property
    def report_key(self) -> str | None: ...


class _DrillRecord(Protocol):  # drill.DrillRecord
    @property
    def drill_id(self) -> str: ...
    @property
    def snapshot_id(self) -> str | None: ...
    @property
    def validation_failures(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def differences(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def key(self) -> str: ...


class BackupError(Exception):
    """Base of every error this tool raises on purpose. `str()` is one clear line."""

    exit_code = 1
    scope: Scope = "run"

    def __init__(self, *args: Any, scope: Scope | None = None) -> None:
        super().__init__(*args)
        if scope is not None:
            self.scope = scope


class UsageError(BackupError):
    """Bad input: a malformed event, an argument that cannot be right."""

    exit_code = 2


class PoolNotFoundError(BackupError):
    pass


class BucketNotFoundError(BackupError):
    pass


class NotConfiguredError(BackupError):
    """An optional setting that is not there (Cognito answers ResourceNotFound, e.g. an app
    client without a managed login branding): the reader records none and goes on."""

    scope: Scope = "record"


class AccessDeniedError(BackupError):
    pass


class SnapshotNotFoundError(BackupError):
    pass


class SnapshotCorruptError(BackupError):
    pass


class SignatureError(SnapshotCorruptError):
    """A manifest's signature is missing, malformed, made with another key, or wrong.

    `reason` is one of `missing`, `malformed`, `other_key`, `mismatch`: a manifest nobody
    with the export role wrote, or one changed since. Never retried, never forced.
    """

    REASONS = ("missing", "malformed", "other_key", "mismatch")

    def __init__(self, manifest_key: str, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown signature failure reason {reason!r}")
        text = f"{manifest_key}: signature {reason}"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.manifest_key = manifest_key
        self.reason = reason


class SigningKeyError(BackupError):
    """The signing key cannot be used (not found, disabled, wrong usage, access denied): a
    fault of the configuration, not of the snapshot, so it is raised, never a verdict."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"signing key: {code}: {message}")
        self.code = code


class SigningUnavailableError(BackupError):
    """KMS stayed throttled or unreachable through every retry: worth running again later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"signing key: {code}: {message}")
        self.code = code


class RestoreRefusedError(BackupError):
    """A restore that would do harm; nothing has been written."""


class UserExistsError(BackupError):
    scope: Scope = "record"


class UserNotFoundError(BackupError):
    scope: Scope = "record"


class GroupExistsError(BackupError):
    scope: Scope = "record"


class GroupNotFoundError(BackupError):
    scope: Scope = "record"


class CognitoError(BackupError):
    """Any other Cognito error, with its code kept: a definite refusal of one request unless
    the adapter says the run must stop (a transient code that outlasted every retry)."""

    scope: Scope = "record"

    def __init__(self, code: str, message: str, *, scope: Scope | None = None) -> None:
        super().__init__(f"{code}: {message}", scope=scope)
        self.code = code


class StorageError(BackupError):
    """S3 failed in a way retries did not cure: the run stops, to be resumed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class RecordTooLargeError(BackupError):
    """A record the snapshot writer would not be able to read back (longer than a reader's line
    limit): the export stops before publishing a snapshot no restore could use."""


class LineTooLongError(SnapshotCorruptError):
    """A line of a part longer than a record can be (garbage without newlines)."""

    def __init__(self, message: str, lineno: int) -> None:
        super().__init__(message)
        self.lineno = lineno


class PartTooLargeError(SnapshotCorruptError):
    """A part that decompresses to more than its stored size can honestly hold (a gzip bomb
    or a forged size)."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ChainBrokenError(SnapshotCorruptError):
    """A link of the chain is missing, from another pool, or not a snapshot."""


class SnapshotInvalidError(SnapshotCorruptError):
    """The snapshot failed validation (the verdict is recorded before this is raised)."""

    def __init__(self, report: _ValidationReport) -> None:
        parts = sorted({f.part.rsplit("/", 1)[-1] for f in report.failures if f.part})
        where = f" in {', '.join(parts[:5])}" if parts else ""
        key = report.manifest_key
        super().__init__(
            f"snapshot {report.snapshot_id or key} is invalid: "
            f"{len(report.failures)} problem(s){where}; see {key.rsplit('/', 1)[0]}/validation-report.json"
        )
        self.report = report


class RestoreFailedError(BackupError):
    """The restore finished with failures; its report in S3 says which (ids and counts only here)."""

    def __init__(self, answer: _RestoreAnswer) -> None:
        super().__init__(
            f"restore of {answer.snapshot_id} into {answer.target_user_pool_id} failed: "
            f"{answer.failures} failure(s), {answer.counts.failed} user(s) failed, "
            f"{answer.differences} difference(s) left; "
            f"report: {answer.report_key}"
        )
        self.answer = answer


class DrillFailedError(BackupError):
    """The drill did not find the scratch pool equal to the snapshot (ids and counts only)."""

    def __init__(self, record: _DrillRecord) -> None:
        super().__init__(
            f"drill {record.drill_id} of snapshot {record.snapshot_id} failed: "
            f"{record.validation_failures} validation problem(s), {record.failures} restore failure(s), "
            f"{record.differences} difference(s)"
            + (f", error {record.error}" if record.error else "")
            + f"; record: {record.key}"
        )
        self.record = record


class SignInRefusedError(BackupError):
    """A pool refused a sign-in (wrong password, disabled user, reset required): the message
    names no user and carries no text of Cognito's, which may quote the username."""


class ErasurePendingError(BackupError):
    """A snapshot may still hold a person an erasure removed (it was written before the
    erasure and `forget` has not cleared it yet): refused, never forced, ids only."""


class EraseIncompleteError(BackupError):
    """`forget` could not clear every object version it must (ids and counts only); running it
    again continues. Versions that Object Lock keeps are not this: they are listed with dates."""


class ForgetRefusedError(BackupError):
    """`forget` cannot start now (an export of the pool is under way); nothing was changed."""
