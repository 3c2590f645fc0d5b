"""The Cognito operations moto does not implement, answered here with per-pool state.

moto 5 has no UI customisation, managed login branding, log delivery or risk configuration:
it answers them as not implemented. These answer them as Cognito does (the API reference of
each operation; shapes checked against botocore's model in tests/tools/test_cognito_local_extras.py):

- GetUICustomization / SetUICustomization: per pool (ClientId absent: the pool-wide one, which
  Cognito names "ALL") and per app client. A client with none of its own gets the pool-wide one;
  nothing set answers the empty shape. Set needs a domain on the pool ("There has to be an
  existing domain associated with this user pool"). The image is answered as an ImageUrl
  (Cognito serves it from CloudFront); its bytes are never given back.
- CreateManagedLoginBranding / DescribeManagedLoginBrandingByClient: one per app client;
  a second is ManagedLoginBrandingExistsException, none is ResourceNotFoundException;
  UseCognitoProvidedValues with Settings or Assets is refused (InvalidParameterException).
- GetLogDeliveryConfiguration / SetLogDeliveryConfiguration: at most two configurations, one
  destination each; userAuthEvents needs the Plus tier (FeatureUnavailableInTierException).
- DescribeRiskConfiguration / SetRiskConfiguration: pool-wide and per client (a client with none
  of its own gets the pool's, as ClientId "ALL"); only on a pool whose threat protection is on
  (Plus tier, UserPoolAddOns AUDIT or ENFORCED), else UserPoolAddOnNotEnabledException.

Unknown pool or client: ResourceNotFoundException. The state hangs off moto's own pool object
(a weak reference), so it lives as long as the pool, whichever transport or engine answered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALL = "ALL"  # Cognito's ClientId for the pool-wide UI customisation and risk configuration

OPERATIONS = frozenset(
    {
        "GetUICustomization",
        "SetUICustomization",
        "CreateManagedLoginBranding",
        "DescribeManagedLoginBrandingByClient",
        "GetLogDeliveryConfiguration",
        "SetLogDeliveryConfiguration",
        "DescribeRiskConfiguration",
        "SetRiskConfiguration",
    }
)

_LOG_SOURCES = frozenset({"userNotification", "userAuthEvents"})
_LOG_LEVELS = frozenset({"ERROR", "INFO"})
_DESTINATIONS = ("CloudWatchLogsConfiguration", "S3Configuration", "FirehoseConfiguration")


@dataclass(frozen=True)
class Answer:
    """A 200 answer, or a refusal (`code` set), as JSON."""

    body: dict[str, Any]
    code: str | None = None
    message: str = ""


def _refuse(code: str, message: str) -> Answer:
    return Answer({}, code, message)


@dataclass
class PoolExtras:
    """What one pool holds of the operations moto lacks."""

    ui: dict[str, dict[str, Any]] = field(default_factory=dict)  # client id or ALL -> customisation
    brandings: dict[str, dict[str, Any]] = field(default_factory=dict)  # client id -> branding
    log_delivery: list[dict[str, Any]] | None = None
    risk: dict[str, dict[str, Any]] = field(default_factory=dict)  # client id or ALL -> configuration


_STATE: weakref.WeakKeyDictionary[Any, PoolExtras] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()

PoolLookup = Callable[[str, str, str], Any]  # (account, region, pool id) -> moto's pool or None


def moto_pool(account_id: str, region: str, pool_id: str) -> Any:
    from moto.backends import get_backend

    # dict.get on purpose: moto's __getitem__ creates missing accounts and regions.
    regions = get_backend("cognito-idp").get(account_id)
    backend = regions.get(region) if regions is not None else None
    return backend.user_pools.get(pool_id) if backend is not None else None


def _now() -> float:
    return round(time.time(), 3)


def _threat_protection_on(pool: Any) -> bool:
    config = getattr(pool, "extended_config", {}) or {}
    mode = (config.get("UserPoolAddOns") or {}).get("AdvancedSecurityMode", "OFF")
    return config.get("UserPoolTier") == "PLUS" and mode in ("AUDIT", "ENFORCED")


def _has_domain(pool: Any) -> bool:
    return getattr(pool, "domain", None) is not None


def answer(
    operation: str,
    params: Mapping[str, Any],
    *,
    account_id: str,
    region: str,
    lookup: PoolLookup = moto_pool,
) -> Answer:
    """Answer one of OPERATIONS for the pool `params` name (applying it, for a Set or Create)."""
    pool_id = str(params.get("UserPoolId") or "")
    pool = lookup(account_id, region, pool_id) if pool_id else None
    if pool is None:
        return _refuse("ResourceNotFoundException", f"User pool {pool_id} does not exist.")
    client = params.get("ClientId")
    if client is not None and client not in getattr(pool, "clients", {}):
        return _refuse("ResourceNotFoundException", f"User pool client {client} does not exist.")
    with _LOCK:
        extras = _STATE.setdefault(pool, PoolExtras())
        handler = _HANDLERS[operation]
        return handler(pool, pool_id, extras, params)


# ---------------------------------------------------------------- UI customisation
def _ui_empty(pool_id: str, client: str) -> dict[str, Any]:
    return {"UserPoolId": pool_id, "ClientId": client}


def _get_ui(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    client = str(params.get("ClientId") or ALL)
    found = extras.ui.get(client) or extras.ui.get(ALL) or _ui_empty(pool_id, client)
    return Answer({"UICustomization": dict(found)})


def _set_ui(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    if not _has_domain(pool):
        return _refuse(
            "InvalidParameterException", "There has to be an existing domain associated with this user pool"
        )
    client = str(params.get("ClientId") or ALL)
    before = extras.ui.get(client)
    now = _now()
    item: dict[str, Any] = {
        "UserPoolId": pool_id,
        "ClientId": client,
        "CreationDate": before["CreationDate"] if before else now,
        "LastModifiedDate": now,
    }
    if params.get("CSS") is not None:
        item["CSS"] = str(params["CSS"])
        item["CSSVersion"] = hashlib.sha256(item["CSS"].encode()).hexdigest()[:16]
    if params.get("ImageFile"):
        digest = hashlib.sha256(str(params["ImageFile"]).encode()).hexdigest()[:24]
        item["ImageUrl"] = f"https://d3oia8etllorh5.cloudfront.net/{pool_id}/{client}/{digest}.png"
    extras.ui[client] = item
    return Answer({"UICustomization": dict(item)})


# ---------------------------------------------------------------- managed login branding
def _create_branding(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    client = str(params["ClientId"])
    if client in extras.brandings:
        return _refuse(
            "ManagedLoginBrandingExistsException", "Managed login branding already exists for this client"
        )
    cognito_values = bool(params.get("UseCognitoProvidedValues"))
    if cognito_values and (params.get("Settings") or params.get("Assets")):
        return _refuse(
            "InvalidParameterException",
            "Settings and Assets cannot be given when UseCognitoProvidedValues is true",
        )
    for asset in params.get("Assets") or []:
        if not all(asset.get(k) for k in ("Category", "ColorMode", "Extension")):
            return _refuse(
                "InvalidParameterException", "An asset needs its Category, ColorMode and Extension"
            )
        if asset.get("Bytes"):
            try:
                base64.b64decode(str(asset["Bytes"]), validate=True)
            except ValueError:
                return _refuse("InvalidParameterException", "Asset Bytes must be base64")
    now = _now()
    item: dict[str, Any] = {
        "ManagedLoginBrandingId": str(uuid.uuid4()),
        "UserPoolId": pool_id,
        "UseCognitoProvidedValues": cognito_values,
        "Assets": [dict(a) for a in params.get("Assets") or []],
        "CreationDate": now,
        "LastModifiedDate": now,
    }
    if params.get("Settings") is not None:
        item["Settings"] = json.loads(json.dumps(params["Settings"]))
    extras.brandings[client] = item
    return Answer({"ManagedLoginBranding": dict(item)})


def _describe_branding(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    item = extras.brandings.get(str(params["ClientId"]))
    if item is None:
        return _refuse("ResourceNotFoundException", "Managed login branding does not exist for this client")
    return Answer({"ManagedLoginBranding": dict(item)})


# ---------------------------------------------------------------- log delivery
def _log_answer(pool_id: str, configs: list[dict[str, Any]]) -> Answer:
    return Answer({"LogDeliveryConfiguration": {"UserPoolId": pool_id, "LogConfigurations": configs}})


def _get_logs(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    return _log_answer(pool_id, [dict(c) for c in extras.log_delivery or []])


def _set_logs(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    configs = list(params.get("LogConfigurations") or [])
    if len(configs) > 2:
        return _refuse("InvalidParameterException", "LogConfigurations holds at most 2 items")
    for config in configs:
        if config.get("EventSource") not in _LOG_SOURCES or config.get("LogLevel") not in _LOG_LEVELS:
            return _refuse("InvalidParameterException", "EventSource or LogLevel is not valid")
        if sum(1 for d in _DESTINATIONS if config.get(d)) != 1:
            return _refuse("InvalidParameterException", "A log configuration needs exactly one destination")
        tier = (getattr(pool, "extended_config", {}) or {}).get("UserPoolTier")
        if config["EventSource"] == "userAuthEvents" and tier != "PLUS":
            return _refuse(
                "FeatureUnavailableInTierException", "userAuthEvents logs need the Plus feature plan"
            )
    extras.log_delivery = [json.loads(json.dumps(c)) for c in configs]
    return _log_answer(pool_id, [dict(c) for c in extras.log_delivery])


# ---------------------------------------------------------------- risk configuration
_RISK_PARTS = (
    "CompromisedCredentialsRiskConfiguration",
    "AccountTakeoverRiskConfiguration",
    "RiskExceptionConfiguration",
)
_ADD_ON_OFF = (
    "Threat protection is not enabled for this user pool: its feature plan must be Plus, "
    "with UserPoolAddOns on"
)


def _describe_risk(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    if not _threat_protection_on(pool):
        return _refuse("UserPoolAddOnNotEnabledException", _ADD_ON_OFF)
    client = str(params.get("ClientId") or ALL)
    found = extras.risk.get(client) or extras.risk.get(ALL) or {"UserPoolId": pool_id, "ClientId": ALL}
    return Answer({"RiskConfiguration": dict(found)})


def _set_risk(pool: Any, pool_id: str, extras: PoolExtras, params: Mapping[str, Any]) -> Answer:
    if not _threat_protection_on(pool):
        return _refuse("UserPoolAddOnNotEnabledException", _ADD_ON_OFF)
    takeover = params.get("AccountTakeoverRiskConfiguration") or {}
    actions = (takeover.get("Actions") or {}).values()
    if any(a.get("Notify") for a in actions) and not (takeover.get("NotifyConfiguration") or {}).get(
        "SourceArn"
    ):
        return _refuse(
            "InvalidParameterException", "Notify actions need a NotifyConfiguration with a SourceArn"
        )
    client = str(params.get("ClientId") or ALL)
    if not any(params.get(k) for k in _RISK_PARTS):
        extras.risk.pop(client, None)  # only the ids: back to the defaults (a client: the pool's)
        item: dict[str, Any] = {"UserPoolId": pool_id, "ClientId": client}
    else:
        item = {"UserPoolId": pool_id, "ClientId": client, "LastModifiedDate": _now()}
        item.update({k: json.loads(json.dumps(params[k])) for k in _RISK_PARTS if params.get(k)})
        extras.risk[client] = item
    return Answer({"RiskConfiguration": dict(item)})


_HANDLERS: Mapping[str, Callable[[Any, str, PoolExtras, Mapping[str, Any]], Answer]] = {
    "GetUICustomization": _get_ui,
    "SetUICustomization": _set_ui,
    "CreateManagedLoginBranding": _create_branding,
    "DescribeManagedLoginBrandingByClient": _describe_branding,
    "GetLogDeliveryConfiguration": _get_logs,
    "SetLogDeliveryConfiguration": _set_logs,
    "DescribeRiskConfiguration": _describe_risk,
    "SetRiskConfiguration": _set_risk,
}
