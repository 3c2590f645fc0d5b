"""What the Lambda handlers share: settings, clients and core objects from the environment."""

from __future__ import annotations

from .aws import AwsClients
from .cognito import CognitoGateway
from .pacing import DEFAULT_QUOTAS, Pacer
from .settings import Settings
from .signing import KmsMac, ManifestSigning, VerifyBy, key_region
from .store import SnapshotStore


def signing_for(
    clients: AwsClients, key: str | None, *, allow_unsigned: bool = False, verify_by: VerifyBy = "verify_mac"
) -> ManifestSigning:
    """The signing policy of a run: the configured key (None: none configured)."""
    return ManifestSigning(
        KmsMac(clients.kms(key_region(key)), key) if key else None,
        allow_unsigned=allow_unsigned,
        verify_by=verify_by,
    )


class Runtime:
    """Built per invocation from validated settings (cheap: clients are lazy).

    `verify_by`: the exports' roles may only GenerateMac, so they check a base's signature by
    making the MAC again; every other function calls VerifyMac. `quota_share` is the share of
    the deployment's quotas (QUOTA_FRACTION) this run kind takes: scheduled exports pass
    EXPORT_QUOTA_SHARE, everything else takes all of it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        allow_unsigned: bool = False,
        verify_by: VerifyBy = "verify_mac",
        quota_share: float = 1.0,
    ) -> None:
        self.settings = settings
        self.fraction = settings.quota_fraction * quota_share
        self.clients = AwsClients(region=settings.region, endpoint_url=settings.endpoint_url)
        signing = signing_for(
            self.clients, settings.signing_key_arn, allow_unsigned=allow_unsigned, verify_by=verify_by
        )
        self.store = SnapshotStore(self.clients.s3(), settings.bucket_name, settings.kms_key_arn, signing)
        self.gateway = CognitoGateway(
            self.clients.cognito(), Pacer(dict(DEFAULT_QUOTAS), fraction=self.fraction)
        )

    def gateway_in(self, region: str) -> CognitoGateway:
        """A gateway for a pool of another region (the migration trigger's source pool may be
        in one): the pool id's prefix is its region. The same gateway for this region."""
        if region == self.clients.region:
            return self.gateway
        clients = AwsClients(region=region, endpoint_url=self.settings.endpoint_url)
        return CognitoGateway(clients.cognito(), Pacer(dict(DEFAULT_QUOTAS), fraction=self.fraction))
