"""Signed manifests: a KMS HMAC over the manifest, made by the exports, checked by every reader.

The hashes of the parts live in the manifest, so whoever can write the prefix could rewrite
parts and manifest together; the signature is what they cannot make. What is signed:

    message   = SHA-256 of canonical_json(manifest without `signature`)
    canonical = JSON with sorted keys, separators (",", ":"), ensure_ascii=False, UTF-8

of the manifest's JSON form: as the model dumps it when it is written (which is exactly what
is stored), and as it is stored when it is read, so that the model may gain fields later
without older signatures breaking. The digest,
not the JSON, is the message: GenerateMac takes at most 4,096 bytes and a manifest lists
hundreds of parts. KMS makes and checks the MAC; the key never leaves it.

`KmsMac` is the KMS adapter. `ManifestSigning` is the policy a store applies: sign on write,
and on read verify with the CONFIGURED key (never the key a manifest names), refusing with a
`SignatureError` that names the reason. `allow_unsigned` accepts a manifest that has no
signature at all (made before signing existed), never a wrong one.

Verification has two ways, one per kind of role: the validator and the restore call VerifyMac;
the exports, whose role may only GenerateMac, check a base by making the MAC again and
comparing in constant time (an HMAC is deterministic: the same key and message give the same
MAC). Both give the same verdicts. KMS transient errors (5xx, throttling, connection errors) are
retried by botocore's standard mode, as S3 calls are (aws.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from botocore.exceptions import ClientError

from .cognito import TRANSPORT_ERRORS, is_transient
from .errors import SignatureError, SigningKeyError, SigningUnavailableError, UsageError
from .models import Manifest, ManifestSignature

MAC_ALGORITHM = "HMAC_SHA_256"
SignatureState = Literal["signed", "unsigned"]
VerifyBy = Literal["verify_mac", "generate_mac"]

_KEY_ARN_TAIL = re.compile(r"^arn:aws[a-z-]*:kms:[^:]+:\d{12}:key/(?P<id>[^/]+)$")
_KEY_ID = re.compile(r"^[0-9a-fA-F-]{36}$|^mrk-[0-9a-f]{32}$")


def canonical_json(manifest: Manifest | Mapping[str, Any]) -> bytes:
    """The bytes that are signed: the manifest's JSON form without `signature`, canonical."""
    doc = manifest.model_dump(mode="json") if isinstance(manifest, Manifest) else dict(manifest)
    doc.pop("signature", None)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def manifest_digest(manifest: Manifest | Mapping[str, Any]) -> bytes:
    """The message given to KMS: SHA-256 of the canonical JSON (32 bytes)."""
    return hashlib.sha256(canonical_json(manifest)).digest()


def key_region(key: str) -> str | None:
    """The region a key ARN (or alias ARN) names; None for a key id or alias name (the run's)."""
    parts = key.split(":")
    return parts[3] if key.startswith("arn:") and len(parts) > 5 and parts[3] else None


def key_uuid(key: str) -> str | None:
    """The key id inside a key ARN or a bare key id; None for an alias (unknown until KMS says)."""
    match = _KEY_ARN_TAIL.match(key)
    if match:
        return match.group("id")
    if _KEY_ID.match(key):
        return key
    return None


class _MacMismatch(Exception):
    """KMS (or the comparison with a MAC made again) says the MAC is not this key's."""


class KmsMac:
    """The KMS adapter: GenerateMac and VerifyMac with one configured HMAC key.

    `key_id` is what was configured (key id, ARN or alias); `key_arn` is what KMS answered
    the last time it named the key (GenerateMac and VerifyMac say which key they used).
    """

    def __init__(self, kms: Any, key_id: str) -> None:
        if not key_id:
            raise UsageError("a signing key (KMS HMAC key id, ARN or alias) is required")
        self._kms = kms
        self.key_id = key_id
        self.key_arn: str | None = key_id if key_id.startswith("arn:") and ":key/" in key_id else None

    def _fail(self, exc: ClientError) -> SigningKeyError | SigningUnavailableError:
        """Throttling or a 5xx that outlasted botocore's retries can pass; anything else (no such
        key, disabled, wrong usage, access denied) is the configuration's fault."""
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        if is_transient(exc):
            return SigningUnavailableError(code, message)
        return SigningKeyError(code, message)

    def generate(self, message: bytes) -> tuple[bytes, str]:
        """The MAC of `message` and the key's ARN (as KMS names it)."""
        try:
            resp = self._kms.generate_mac(KeyId=self.key_id, Message=message, MacAlgorithm=MAC_ALGORITHM)
        except ClientError as exc:
            raise self._fail(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise SigningUnavailableError("ConnectionError", str(exc)) from exc
        answered = str(resp["KeyId"])
        # KMS answers the key's ARN; moto its bare id: keep the ARN when it names the same key.
        if not (self.key_arn and key_uuid(answered) == key_uuid(self.key_arn)):
            self.key_arn = answered
        return bytes(resp["Mac"]), self.key_arn

    def verify(self, message: bytes, mac: bytes) -> str:
        """The key's ARN when `mac` is this key's MAC of `message`; _MacMismatch otherwise."""
        try:
            resp = self._kms.verify_mac(
                KeyId=self.key_id, Message=message, Mac=mac, MacAlgorithm=MAC_ALGORITHM
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "KMSInvalidMacException":
                raise _MacMismatch() from exc
            raise self._fail(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise SigningUnavailableError("ConnectionError", str(exc)) from exc
        if resp.get("MacValid") is not True:
            raise _MacMismatch()
        answered = str(resp.get("KeyId", ""))
        # KMS answers the key's ARN; moto echoes what it was given (an alias stays an alias).
        if key_uuid(answered) is not None:
            self.key_arn = answered
        return answered

    def verify_by_generating(self, message: bytes, mac: bytes) -> str:
        """The same check with GenerateMac only (the exports' roles): make it again, compare."""
        expected, arn = self.generate(message)
        if not hmac.compare_digest(expected, mac):
            raise _MacMismatch()
        return arn

    def names_this_key(self, key_id: str) -> bool | None:
        """Whether `key_id` (from a manifest) is the configured key; None if not yet known
        (an alias, before KMS has named the key it stands for)."""
        mine = key_uuid(self.key_arn) if self.key_arn else key_uuid(self.key_id)
        theirs = key_uuid(key_id)
        if mine is None:
            return None
        return theirs == mine


class ManifestSigning:
    """What a store does with signatures: sign what it writes, verify what it reads.

    With no key (`mac` None) nothing can be signed, and only a manifest with no signature can
    be accepted, and only with `allow_unsigned`.
    """

    def __init__(
        self, mac: KmsMac | None, *, allow_unsigned: bool = False, verify_by: VerifyBy = "verify_mac"
    ) -> None:
        self.mac = mac
        self.allow_unsigned = allow_unsigned
        self.verify_by: VerifyBy = verify_by

    @property
    def can_sign(self) -> bool:
        return self.mac is not None

    def require_key(self, what: str) -> None:
        """Refuse, before any work, a run that needs the signing key when none is configured."""
        if self.mac is None:
            raise UsageError(
                f"{what} needs the signing key: set --signing-key or COGNITO_BACKUP_SIGNING_KEY "
                "(CLI), SIGNING_KEY_ARN (Lambda) to the KMS HMAC key"
            )

    def sign(self, manifest: Manifest) -> Manifest:
        """A copy of `manifest` carrying its signature."""
        self.require_key("writing a manifest")
        assert self.mac is not None
        mac, arn = self.mac.generate(manifest_digest(manifest))
        signature = ManifestSignature(
            algorithm=MAC_ALGORITHM, key_id=arn, mac=base64.b64encode(mac).decode("ascii")
        )
        return manifest.model_copy(update={"signature": signature})

    def derived_key(self, label: str) -> bytes:
        """A secret that only a holder of GenerateMac on the key can make: the MAC of the
        SHA-256 of `label`. A label is not canonical JSON, so no derived key is the MAC of a
        manifest, and knowing one signs nothing (the erasure ledger's hash key, erasure.py)."""
        self.require_key("hashing erased identifiers")
        assert self.mac is not None
        return self.mac.generate(hashlib.sha256(label.encode("utf-8")).digest())[0]

    def sign_document(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a JSON document (an erasure ledger entry) carrying its `signature`, made
        as a manifest's is: the MAC of the digest of its canonical JSON without `signature`."""
        self.require_key("writing a signed document")
        assert self.mac is not None
        mac, arn = self.mac.generate(manifest_digest(document))
        signature = {"algorithm": MAC_ALGORITHM, "key_id": arn, "mac": base64.b64encode(mac).decode("ascii")}
        return {**{k: v for k, v in document.items() if k != "signature"}, "signature": signature}

    def check_document(self, key: str, document: Mapping[str, Any]) -> None:
        """A signed document's signature, checked as a manifest's (SignatureError names what
        is wrong). A document has no unsigned past: a missing signature is always refused."""
        raw = document.get("signature")
        if raw is None:
            raise SignatureError(key, "missing", "every ledger entry is signed")
        try:
            signature = ManifestSignature.model_validate(raw)
        except ValueError as exc:
            raise SignatureError(key, "malformed", "not an algorithm, key_id and mac") from exc
        self._check_mac(key, signature, document)

    def check(
        self, manifest_key: str, manifest: Manifest, document: Mapping[str, Any] | None = None
    ) -> SignatureState:
        """`signed` when the signature is the configured key's MAC of this manifest; `unsigned`
        when there is none and unsigned manifests are allowed; else SignatureError.

        `document` is the manifest as stored (its parsed JSON): what was signed is checked
        against what is there, not against the model's reading of it, so that a field the
        model gains later (with a default) does not change the digest of older manifests."""
        signature = manifest.signature
        if signature is None:
            if self.allow_unsigned:
                return "unsigned"
            raise SignatureError(
                manifest_key,
                "missing",
                "a manifest written before signing existed is accepted only with --allow-unsigned",
            )
        self._check_mac(manifest_key, signature, document if document is not None else manifest)
        return "signed"

    def _check_mac(
        self, manifest_key: str, signature: ManifestSignature, document: Manifest | Mapping[str, Any]
    ) -> None:
        if signature.algorithm != MAC_ALGORITHM:
            raise SignatureError(manifest_key, "malformed", f"algorithm {signature.algorithm!r}")
        try:
            mac = base64.b64decode(signature.mac, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError(manifest_key, "malformed", "mac is not base64") from exc
        if len(mac) != hashlib.sha256().digest_size:
            raise SignatureError(manifest_key, "malformed", f"mac of {len(mac)} bytes")
        if self.mac is None:
            raise UsageError(
                f"{manifest_key} is signed and no signing key is configured to verify it: set "
                "--signing-key or COGNITO_BACKUP_SIGNING_KEY (CLI), SIGNING_KEY_ARN (Lambda)"
            )
        if self.mac.names_this_key(signature.key_id) is False:
            raise SignatureError(manifest_key, "other_key", "made with a key that is not the configured one")
        message = manifest_digest(document)
        try:
            if self.verify_by == "generate_mac":
                arn = self.mac.verify_by_generating(message, mac)
            else:
                arn = self.mac.verify(message, mac)
        except _MacMismatch as exc:
            raise SignatureError(
                manifest_key, "mismatch", "not the configured key's MAC of this manifest"
            ) from exc
        if key_uuid(arn) is not None and key_uuid(signature.key_id) != key_uuid(arn):
            # The MAC is the configured key's, yet the manifest names another key: refused all
            # the same, since what a manifest says about itself must be true.
            raise SignatureError(manifest_key, "other_key", "names a key that is not the configured one")
