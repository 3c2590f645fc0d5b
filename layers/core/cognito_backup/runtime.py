"""What the Lambda handlers share: settings, clients and core objects from the environment."""

from __future__ import annotations

from .aws import AwsClients
from .cognito import CognitoGateway
from .pacing import DEFAULT_QUOTAS, Pacer
from .settings import Settings
from .store import SnapshotStore


class Runtime:
    """Built per invocation from validated settings (cheap: clients are lazy).

    `quota_share` is the share of the deployment's quotas (QUOTA_FRACTION) this run kind
    takes: scheduled exports pass EXPORT_QUOTA_SHARE, everything else takes all of it.
    """

    def __init__(self, settings: Settings, *, quota_share: float = 1.0) -> None:
        self.settings = settings
        self.fraction = settings.quota_fraction * quota_share
        self.clients = AwsClients(region=settings.region, endpoint_url=settings.endpoint_url)
        self.store = SnapshotStore(self.clients.s3(), settings.bucket_name, settings.kms_key_arn)
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
