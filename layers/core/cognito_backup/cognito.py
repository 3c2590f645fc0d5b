"""The only code that talks to Cognito: paced, retried, errors mapped by code."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from . import config_fields
from .config_fields import keep_fields
from .errors import (
    AccessDeniedError,
    BackupError,
    CognitoError,
    GroupExistsError,
    GroupNotFoundError,
    NotConfiguredError,
    PoolNotFoundError,
    SignInRefusedError,
    UsageError,
    UserExistsError,
    UserNotFoundError,
)
from .models import GroupRecord, MembershipRecord, MfaOption, PoolConfigRecord, UserRecord
from .pacing import Pacer

PAGE_LIMIT = 60  # Cognito's maximum for ListUsers, ListUsersInGroup, ListGroups
# Transient answers: retried with backoff, whatever the operation (docs/restore.md).
# Besides these codes, any HTTP 5xx is transient by its status, whatever its code says.
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "InternalErrorException",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
THROTTLE_CODES = frozenset({"TooManyRequestsException", "ThrottlingException"})
# Connection refused, reset or closed, connect and read timeouts, broken response streams:
# botocore's ConnectionError (EndpointConnectionError, ConnectTimeoutError, SSLError, ...) and
# HTTPClientError (ConnectionClosedError, ReadTimeoutError, ResponseStreamingError, ...).
TRANSPORT_ERRORS = (BotocoreConnectionError, HTTPClientError)


ALL_CLIENTS = "ALL"  # Cognito's ClientId of a pool-wide UI customisation or risk configuration
# The fields of a per-client answer that are no setting: an answer of only these holds none.
_METADATA = frozenset({"UserPoolId", "ClientId", "CreationDate", "LastModifiedDate", "CSSVersion"})


def threat_protection_on(pool: dict[str, Any]) -> bool:
    """Whether the pool has threat protection (risk configuration): the Plus feature plan with
    its add-on on. DescribeRiskConfiguration refuses any other pool."""
    mode = (pool.get("UserPoolAddOns") or {}).get("AdvancedSecurityMode", "OFF")
    return pool.get("UserPoolTier") == "PLUS" and mode in ("AUDIT", "ENFORCED")


def is_transient(exc: ClientError) -> bool:
    """A throttle, a 5xx or a timeout: worth another try. Anything else is a definite refusal."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in RETRYABLE_CODES or (isinstance(status, int) and (status >= 500 or status == 429))


# Definite refusals of a sign-in (AdminInitiateAuth): the password is not proven.
SIGN_IN_REFUSALS = frozenset(
    {"NotAuthorizedException", "PasswordResetRequiredException", "UserNotConfirmedException"}
)

# The creation-only settings of a pool that change what a username means.
USERNAME_SETTINGS = ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration")

# Sub prefixes: `sub ^= "0"` .. `"f"` split a pool into 16 disjoint shards.
SUB_SHARDS = tuple("0123456789abcdef")


def user_from_api(raw: dict[str, Any]) -> UserRecord:
    """A ListUsers / ListUsersInGroup / AdminGetUser item as a record."""
    attrs = raw.get("Attributes", raw.get("UserAttributes", []))
    return UserRecord(
        username=raw["Username"],
        attributes={a["Name"]: a.get("Value", "") for a in attrs},
        status=raw.get("UserStatus", "UNKNOWN"),
        enabled=bool(raw.get("Enabled", True)),
        created=raw.get("UserCreateDate"),
        modified=raw.get("UserLastModifiedDate"),
        mfa_options=[
            MfaOption(delivery_medium=o.get("DeliveryMedium"), attribute_name=o.get("AttributeName"))
            for o in raw.get("MFAOptions", [])
        ],
    )


def group_from_api(raw: dict[str, Any]) -> GroupRecord:
    return GroupRecord(
        name=raw["GroupName"],
        description=raw.get("Description"),
        precedence=raw.get("Precedence"),
        role_arn=raw.get("RoleArn"),
        created=raw.get("CreationDate"),
        modified=raw.get("LastModifiedDate"),
    )


@dataclass
class CallStats:
    calls: int = 0
    throttled: int = 0
    retried: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, calls: int = 0, throttled: int = 0, retried: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.throttled += throttled
            self.retried += retried


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


class CognitoGateway:
    """Typed Cognito operations over a boto3 client."""

    def __init__(
        self,
        client: Any,
        pacer: Pacer | None = None,
        *,
        max_attempts: int = 12,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._pacer = pacer or Pacer()
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self.stats = CallStats()

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    # ------------------------------------------------------------------ plumbing
    def call(self, operation: str, *, not_found: type[BackupError] = PoolNotFoundError, **kwargs: Any) -> Any:
        """Call one operation, paced, retried with backoff on every transient error (throttling,
        5xx, connection resets, timeouts); map the definite refusals to our errors.

        A retried write may find its first attempt applied (the answer was lost after the
        effect): the caller sees the refusal the retry gets (UserExistsError, ...)."""
        attempt = 0
        while True:
            epoch = self._pacer.acquire(operation)
            self.stats.add(calls=1)
            try:
                return getattr(self._client, operation)(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if is_transient(exc) and attempt + 1 < self._max_attempts:
                    if code in THROTTLE_CODES:
                        self.stats.add(throttled=1)
                        self._pacer.throttled(operation, epoch)
                    self.stats.add(retried=1)
                    self._backoff(attempt)
                    attempt += 1
                    continue
                raise self._map_error(code, exc, not_found, transient=is_transient(exc)) from exc
            except TRANSPORT_ERRORS as exc:
                if attempt + 1 < self._max_attempts:
                    self.stats.add(retried=1)
                    self._backoff(attempt)
                    attempt += 1
                    continue
                raise CognitoError("ConnectionError", str(exc), scope="run") from exc

    def _backoff(self, attempt: int) -> None:
        # Full jitter: spreads the retries of parallel workers apart.
        cap = min(self._max_delay, self._base_delay * (2**attempt))
        self._sleep(random.uniform(cap / 2, cap))  # noqa: S311 - jitter, not crypto

    @staticmethod
    def _map_error(
        code: str, exc: ClientError, not_found: type[BackupError], *, transient: bool = False
    ) -> BackupError:
        """The definite refusals as what they concern (a user, a group: the record at hand;
        access, the pool: the run); a transient error that outlasted every retry stops the run,
        which resumes from its checkpoint, rather than failing a record for good."""
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            return not_found(message or "not found")
        if code == "UserNotFoundException":
            return UserNotFoundError(message or "user not found")
        if code in ("UsernameExistsException", "AliasExistsException"):
            return UserExistsError(message or "user exists")
        if code == "GroupExistsException":
            return GroupExistsError(message or "group exists")
        if code in ("AccessDeniedException", "NotAuthorizedException", "UnrecognizedClientException"):
            return AccessDeniedError(f"access denied to Cognito ({code}): {message}")
        if code in ("InvalidParameterException", "ValidationException"):
            return UsageError(f"Cognito refused the request ({code}): {message}", scope="record")
        return CognitoError(code, message, scope="run" if transient else "record")

    # ------------------------------------------------------------------ reads
    def describe_pool(self, pool_id: str) -> dict[str, Any]:
        try:
            resp = self.call("describe_user_pool", UserPoolId=pool_id)
        except UsageError as exc:  # a malformed id is "no such pool" to the user
            raise PoolNotFoundError(f"no such user pool: {pool_id}") from exc
        except PoolNotFoundError as exc:
            raise PoolNotFoundError(f"no such user pool: {pool_id}") from exc
        pool = keep_fields(resp["UserPool"], config_fields.USER_POOL)
        return pool

    def list_users_page(
        self, pool_id: str, token: str | None, filter_: str | None = None
    ) -> Page[UserRecord]:
        kwargs: dict[str, Any] = {"UserPoolId": pool_id, "Limit": PAGE_LIMIT}
        if token:
            kwargs["PaginationToken"] = token
        if filter_:
            kwargs["Filter"] = filter_
        resp = self.call("list_users", **kwargs)
        return Page([user_from_api(u) for u in resp.get("Users", [])], resp.get("PaginationToken"))

    def list_groups_page(self, pool_id: str, token: str | None) -> Page[GroupRecord]:
        kwargs: dict[str, Any] = {"UserPoolId": pool_id, "Limit": PAGE_LIMIT}
        if token:
            kwargs["NextToken"] = token
        resp = self.call("list_groups", **kwargs)
        return Page([group_from_api(g) for g in resp.get("Groups", [])], resp.get("NextToken"))

    def list_members_page(self, pool_id: str, group: str, token: str | None) -> Page[MembershipRecord]:
        kwargs: dict[str, Any] = {"UserPoolId": pool_id, "GroupName": group, "Limit": PAGE_LIMIT}
        if token:
            kwargs["NextToken"] = token
        resp = self.call("list_users_in_group", **kwargs)
        return Page(
            [MembershipRecord(group=group, username=u["Username"]) for u in resp.get("Users", [])],
            resp.get("NextToken"),
        )

    def iter_users(self, pool_id: str, filter_: str | None = None) -> Iterator[UserRecord]:
        token: str | None = None
        while True:
            page = self.list_users_page(pool_id, token, filter_)
            yield from page.items
            token = page.next_token
            if not token:
                return

    def iter_groups(self, pool_id: str) -> Iterator[GroupRecord]:
        token: str | None = None
        while True:
            page = self.list_groups_page(pool_id, token)
            yield from page.items
            token = page.next_token
            if not token:
                return

    def iter_members(self, pool_id: str, group: str) -> Iterator[str]:
        token: str | None = None
        while True:
            page = self.list_members_page(pool_id, group, token)
            yield from (m.username for m in page.items)
            token = page.next_token
            if not token:
                return

    def pool_config(self, pool_id: str) -> PoolConfigRecord:
        """Everything a rebuild needs to make a matching pool: the fields `config_fields` names,
        never a secret."""
        pool = self.describe_pool(pool_id)
        mfa = keep_fields(self.call("get_user_pool_mfa_config", UserPoolId=pool_id), config_fields.MFA_CONFIG)
        clients = []
        for client_id in self._paged_ids("list_user_pool_clients", "UserPoolClients", "ClientId", pool_id):
            desc = self.call("describe_user_pool_client", UserPoolId=pool_id, ClientId=client_id)
            clients.append(keep_fields(desc["UserPoolClient"], config_fields.APP_CLIENT))
        providers = []
        for name in self._paged_ids("list_identity_providers", "Providers", "ProviderName", pool_id):
            desc = self.call("describe_identity_provider", UserPoolId=pool_id, ProviderName=name)
            providers.append(keep_fields(desc["IdentityProvider"], config_fields.IDENTITY_PROVIDER))
        servers = []
        for ident in self._paged_ids("list_resource_servers", "ResourceServers", "Identifier", pool_id):
            desc = self.call("describe_resource_server", UserPoolId=pool_id, Identifier=ident)
            servers.append(keep_fields(desc["ResourceServer"], config_fields.RESOURCE_SERVER))
        domain = None
        domain_name = pool.get("CustomDomain") or pool.get("Domain")
        if domain_name:
            desc = self.call("describe_user_pool_domain", Domain=domain_name)
            domain = keep_fields(desc.get("DomainDescription") or {}, config_fields.DOMAIN) or None
        client_ids = [str(c["ClientId"]) for c in clients]
        try:  # the pool was just described: a ResourceNotFound here is "no log delivery"
            answer = self.call(
                "get_log_delivery_configuration", not_found=NotConfiguredError, UserPoolId=pool_id
            )
        except NotConfiguredError:
            answer = {}
        logs = answer.get("LogDeliveryConfiguration")
        log_delivery = keep_fields(logs, config_fields.LOG_DELIVERY) if logs else None
        return PoolConfigRecord(
            user_pool=pool,
            mfa_config=mfa,
            app_clients=clients,
            identity_providers=providers,
            resource_servers=servers,
            domain=domain,
            ui_customizations=self._per_client(
                "get_ui_customization", "UICustomization", config_fields.UI_CUSTOMIZATION, pool_id, client_ids
            ),
            managed_login_brandings=self._brandings(pool_id, client_ids),
            log_delivery=log_delivery if log_delivery and log_delivery.get("LogConfigurations") else None,
            risk_configurations=self._risk_configurations(pool_id, client_ids)
            if threat_protection_on(pool)
            else [],
        )

    def _risk_configurations(self, pool_id: str, client_ids: list[str]) -> list[dict[str, Any]]:
        try:
            return self._per_client(
                "describe_risk_configuration",
                "RiskConfiguration",
                config_fields.RISK_CONFIGURATION,
                pool_id,
                client_ids,
            )
        except CognitoError as exc:
            if exc.code == "UserPoolAddOnNotEnabledException":  # Cognito's word on the add-on wins
                return []
            raise

    def _per_client(
        self, operation: str, key: str, shape: config_fields.Shape, pool_id: str, client_ids: list[str]
    ) -> list[dict[str, Any]]:
        """A setting Cognito holds pool-wide (ClientId "ALL") and per app client, where a client
        without its own is answered the pool's: the pool's if it holds any, and each client's own."""
        out: list[dict[str, Any]] = []
        for client_id in [None, *client_ids]:
            kwargs: dict[str, Any] = {"UserPoolId": pool_id}
            if client_id is not None:
                kwargs["ClientId"] = client_id
            item = keep_fields(self.call(operation, **kwargs).get(key) or {}, shape)
            item["ClientId"] = item.get("ClientId") or ALL_CLIENTS
            own = item["ClientId"] == (client_id or ALL_CLIENTS)
            if own and set(item) - _METADATA:
                out.append(item)
        return out

    def _brandings(self, pool_id: str, client_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each client's own branding; its assets' bytes within one budget for the pool
        (config_fields.bound_assets: the configuration is one record of bounded size)."""
        out: dict[str, dict[str, Any]] = {}
        budget = config_fields.ASSET_BYTES_KEPT
        for client_id in client_ids:
            try:
                answer = self.call(
                    "describe_managed_login_branding_by_client",
                    not_found=NotConfiguredError,
                    UserPoolId=pool_id,
                    ClientId=client_id,
                )
            except NotConfiguredError:
                continue  # this client has no branding of its own
            branding = answer.get("ManagedLoginBranding")
            if branding:
                kept = keep_fields(branding, config_fields.MANAGED_LOGIN_BRANDING)
                out[client_id], budget = config_fields.bound_assets(kept, budget)
        return out

    def _paged_ids(self, operation: str, list_key: str, id_key: str, pool_id: str) -> Iterator[str]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"UserPoolId": pool_id, "MaxResults": PAGE_LIMIT}
            if operation == "list_resource_servers":
                kwargs["MaxResults"] = 50  # its own maximum
            if token:
                kwargs["NextToken"] = token
            resp = self.call(operation, **kwargs)
            for item in resp.get(list_key, []):
                yield item[id_key]
            token = resp.get("NextToken")
            if not token:
                return

    def get_user(self, pool_id: str, username: str) -> UserRecord | None:
        try:
            resp = self.call("admin_get_user", UserPoolId=pool_id, Username=username)
        except UserNotFoundError:
            return None
        return user_from_api(resp)

    def groups_for_user(self, pool_id: str, username: str) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"UserPoolId": pool_id, "Username": username, "Limit": PAGE_LIMIT}
            if token:
                kwargs["NextToken"] = token
            resp = self.call("admin_list_groups_for_user", not_found=UserNotFoundError, **kwargs)
            names.extend(g["GroupName"] for g in resp.get("Groups", []))
            token = resp.get("NextToken")
            if not token:
                return names

    # ------------------------------------------------------------------ writes
    def add_custom_attributes(self, pool_id: str, schema: list[dict[str, Any]]) -> None:
        for start in range(0, len(schema), 25):  # at most 25 per call
            self.call(
                "add_custom_attributes", UserPoolId=pool_id, CustomAttributes=schema[start : start + 25]
            )

    @staticmethod
    def _group_kwargs(pool_id: str, group: GroupRecord) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"UserPoolId": pool_id, "GroupName": group.name}
        for key, value in (
            ("Description", group.description),
            ("Precedence", group.precedence),
            ("RoleArn", group.role_arn),
        ):
            if value is not None:
                kwargs[key] = value
        return kwargs

    def create_group(self, pool_id: str, group: GroupRecord) -> None:
        self.call("create_group", **self._group_kwargs(pool_id, group))

    def update_group(self, pool_id: str, group: GroupRecord) -> None:
        self.call("update_group", **self._group_kwargs(pool_id, group))

    def create_user(self, pool_id: str, username: str, attributes: dict[str, str]) -> UserRecord:
        resp = self.call(
            "admin_create_user",
            UserPoolId=pool_id,
            Username=username,
            UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
            MessageAction="SUPPRESS",
        )
        return user_from_api(resp["User"])

    def set_enabled(self, pool_id: str, username: str, enabled: bool) -> None:
        op = "admin_enable_user" if enabled else "admin_disable_user"
        self.call(op, not_found=UserNotFoundError, UserPoolId=pool_id, Username=username)

    def set_password(self, pool_id: str, username: str, password: str, *, permanent: bool) -> None:
        self.call(
            "admin_set_user_password",
            not_found=UserNotFoundError,
            UserPoolId=pool_id,
            Username=username,
            Password=password,
            Permanent=permanent,
        )

    def update_attributes(self, pool_id: str, username: str, attributes: dict[str, str]) -> None:
        self.call(
            "admin_update_user_attributes",
            not_found=UserNotFoundError,
            UserPoolId=pool_id,
            Username=username,
            UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
        )

    def add_to_group(self, pool_id: str, username: str, group: str) -> None:
        self.call(
            "admin_add_user_to_group",
            not_found=UserNotFoundError,
            UserPoolId=pool_id,
            Username=username,
            GroupName=group,
        )

    def remove_from_group(self, pool_id: str, username: str, group: str) -> None:
        self.call(
            "admin_remove_user_from_group",
            not_found=UserNotFoundError,
            UserPoolId=pool_id,
            Username=username,
            GroupName=group,
        )

    def link_provider(
        self, pool_id: str, username: str, provider: str, attr_name: str, attr_value: str
    ) -> None:
        self.call(
            "admin_link_provider_for_user",
            UserPoolId=pool_id,
            DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": username},
            SourceUser={
                "ProviderName": provider,
                "ProviderAttributeName": attr_name,
                "ProviderAttributeValue": attr_value,
            },
        )

    # ------------------------------------------------------------------ restore
    def get_group(self, pool_id: str, name: str) -> GroupRecord | None:
        """One group of a pool, or None when the pool has no such group."""

        try:
            resp = self.call("get_group", not_found=GroupNotFoundError, UserPoolId=pool_id, GroupName=name)
        except GroupNotFoundError:
            return None
        return group_from_api(resp["Group"])

    def identity_provider_names(self, pool_id: str) -> list[str]:
        """The names of the pool's identity providers (SAML, OIDC, social)."""
        return list(self._paged_ids("list_identity_providers", "Providers", "ProviderName", pool_id))

    def invite_user(
        self, pool_id: str, username: str, attributes: dict[str, str], delivery_mediums: list[str]
    ) -> UserRecord:
        """AdminCreateUser that lets Cognito send the invitation (a temporary password)."""
        resp = self.call(
            "admin_create_user",
            UserPoolId=pool_id,
            Username=username,
            UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
            DesiredDeliveryMediums=delivery_mediums,
        )
        return user_from_api(resp["User"])

    def delete_attributes(self, pool_id: str, username: str, names: list[str]) -> None:
        self.call(
            "admin_delete_user_attributes",
            not_found=UserNotFoundError,
            UserPoolId=pool_id,
            Username=username,
            UserAttributeNames=names,
        )

    def delete_user(self, pool_id: str, username: str) -> None:
        """AdminDeleteUser; a user already gone (a lost answer retried) is not an error."""
        try:
            self.call("admin_delete_user", not_found=UserNotFoundError, UserPoolId=pool_id, Username=username)
        except UserNotFoundError:
            return

    def delete_group(self, pool_id: str, name: str) -> None:
        """DeleteGroup; a group already gone (a lost answer retried) is not an error."""

        try:
            self.call("delete_group", not_found=GroupNotFoundError, UserPoolId=pool_id, GroupName=name)
        except GroupNotFoundError:
            return

    # ------------------------------------------------------------------ migration trigger
    def check_password(self, pool_id: str, client_id: str, username: str, password: str) -> str | None:
        """Whether the pool accepts this password (AdminInitiateAuth, ADMIN_USER_PASSWORD_AUTH).

        Returns None when the pool answered with tokens (discarded), or the name of the
        challenge it asked for next (NEW_PASSWORD_REQUIRED, SMS_MFA, ...): Cognito checks the
        password before it asks for any challenge, so either answer proves the password.
        Raises SignInRefusedError on a refusal (wrong password, disabled user, reset required,
        unconfirmed) and UserNotFoundError for an unknown user, both without Cognito's message
        and `from None`: moto's, at least, quotes the username.
        """
        try:
            resp = self.call(
                "admin_initiate_auth",
                UserPoolId=pool_id,
                ClientId=client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        except (AccessDeniedError, CognitoError, UserNotFoundError) as exc:
            cause = exc.__cause__
            code = cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""
            if code == "UserNotFoundException":
                raise UserNotFoundError("no such user in the source pool") from None
            if code in SIGN_IN_REFUSALS:
                raise SignInRefusedError(f"the source pool refused the sign-in ({code})") from None
            raise
        challenge = resp.get("ChallengeName")
        return str(challenge) if challenge else None

    def client_has_secret(self, pool_id: str, client_id: str) -> bool:
        """Whether an app client has a secret (AdminInitiateAuth then needs a SECRET_HASH)."""
        resp = self.call("describe_user_pool_client", UserPoolId=pool_id, ClientId=client_id)
        return bool(resp["UserPoolClient"].get("ClientSecret"))
