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
