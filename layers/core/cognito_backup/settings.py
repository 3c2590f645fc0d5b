"""Configuration from the environment, validated once and cached (no import-time reads)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UsageError


class Settings(BaseModel):
    """What the Lambdas read from their environment (names as in template.yaml)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    bucket_name: str = Field(min_length=3, alias="BUCKET_NAME")
    user_pool_id: str | None = Field(default=None, alias="USER_POOL_ID")
    backup_prefix: str = Field(default="backups", alias="BACKUP_PREFIX")
    kms_key_arn: str | None = Field(default=None, alias="KMS_KEY_ARN")
    # The KMS HMAC key that signs manifests (exports) and verifies them (everyone else).
    signing_key_arn: str | None = Field(default=None, alias="SIGNING_KEY_ARN")
    region: str | None = Field(default=None, alias="AWS_REGION")
    endpoint_url: str | None = Field(default=None, alias="AWS_ENDPOINT_URL")
    # The warm standby pool: restores into it are mirror syncs of each validated snapshot.
    standby_user_pool_id: str | None = Field(default=None, alias="STANDBY_USER_POOL_ID")
    # Seconds kept free before the Lambda's deadline to close a part and checkpoint.
    deadline_margin_seconds: float = Field(default=60.0, ge=0, alias="DEADLINE_MARGIN_SECONDS")
    # Fraction of each Cognito quota this deployment may use (several pools, other tools).
    quota_fraction: float = Field(default=1.0, gt=0, le=1, alias="QUOTA_FRACTION")
    # Share of that a scheduled export takes: the rest is headroom for the application's own
    # calls on the same account-wide quotas (restores take all of QUOTA_FRACTION).
    export_quota_share: float = Field(default=0.5, gt=0, le=1, alias="EXPORT_QUOTA_SHARE")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        env = {k: v for k, v in env.items() if v != ""}
        try:
            return cls.model_validate(env)
        except ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise UsageError(f"invalid or missing environment settings: {fields}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
