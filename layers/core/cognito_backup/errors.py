"""Domain errors: adapters translate AWS errors into these, by error code."""

from __future__ import annotations


class BackupError(Exception):
    """Base of every error this tool raises on purpose. `str()` is one clear line."""

    exit_code = 1


class UsageError(BackupError):
    """Bad input: a malformed event, an argument that cannot be right."""

    exit_code = 2


class PoolNotFoundError(BackupError):
    pass


class BucketNotFoundError(BackupError):
    pass


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
    pass


class UserNotFoundError(BackupError):
    pass


class GroupExistsError(BackupError):
    pass


class CognitoError(BackupError):
    """Any other Cognito error, with its code kept."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class StorageError(BackupError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class SignInRefusedError(BackupError):
    """A pool refused a sign-in (wrong password, disabled user, reset required): the message
    names no user and carries no text of Cognito's, which may quote the username."""
