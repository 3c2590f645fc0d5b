"""The HMAC key that signs manifests, made in the local AWS (the demo, the end-to-end tests).

As template.yaml's SigningKey: KeySpec HMAC_256, KeyUsage GENERATE_VERIFY_MAC (moto checks the
usage on GenerateMac and VerifyMac, as KMS does).
"""

from __future__ import annotations

from typing import Any

SIGNING_KEY_SPEC = "HMAC_256"
SIGNING_KEY_USAGE = "GENERATE_VERIFY_MAC"


def create_signing_key(kms: Any, description: str = "cognito-backup manifest signatures (local)") -> str:
    """A new HMAC key; its ARN (what SIGNING_KEY_ARN and --signing-key take)."""
    meta = kms.create_key(KeySpec=SIGNING_KEY_SPEC, KeyUsage=SIGNING_KEY_USAGE, Description=description)
    return str(meta["KeyMetadata"]["Arn"])
