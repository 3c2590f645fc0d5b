"""Every handler in template.yaml, imported and invoked with only what Lambda gives it.

The dev environment has moto, aws-xray-sdk, yaml and more; Lambda has the python3.13 runtime
and what `sam build` puts in the layer from layers/core/requirements.txt. So each handler
runs here in a fresh interpreter started with `-I -S` (no site-packages, no PYTHON* variables),
whose path is what Lambda's is: the function's code, then the layer (the requirements
installed with pip into a clean directory, plus the core package), then the standard library.
It talks to a moto server over HTTP, with the environment template.yaml gives the function.

Runs with python3.13 (the functions' runtime) when it is installed, else this interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfn_flip import load_yaml

from cognito_local.seed import create_pool, seed_pool
from cognito_local.server import LocalAws

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "layers" / "core" / "requirements.txt"
EVENTS = REPO / "events"
CACHE = REPO / ".lambda-runtime"
BUCKET = "runtime-backups"
REGION = "us-east-1"
MIGRANT = "runtime-migrant"
MIGRANT_PASSWORD = "Migr4nt-passw0rd!"  # a test user's, in the local AWS only

# What the invoked interpreter runs: Lambda's import path, a context, one invocation.
BOOTSTRAP = r"""
import json, sys, traceback
task, layer, handler_spec, event_path = sys.argv[1:5]
sys.path[:0] = [task, layer]
try:
    import moto  # noqa: F401
except ImportError:
    pass
else:
    print("moto is importable: this is not Lambda's environment", file=sys.stderr)
    sys.exit(3)

class Context:
    function_name = "runtime-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:runtime-test"
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    log_group_name = "/aws/lambda/runtime-test"
    log_stream_name = "stream"
    def get_remaining_time_in_millis(self):
        return 900_000

module_name, function_name = handler_spec.rsplit(".", 1)
module = __import__(module_name)
event = json.load(open(event_path))
try:
    answer = getattr(module, function_name)(event, Context())
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    traceback.print_exc()
    sys.exit(1)
outside = sorted(
    {m.__file__ for m in list(sys.modules.values())
     if getattr(m, "__file__", None) and not m.__file__.startswith((task, layer, sys.base_prefix))}
)
print(json.dumps({"answer": answer, "outside": outside}))
"""


def runtime_python() -> str:
    """python3.13 (Lambda's runtime) where pyenv or PATH has it, else this interpreter."""
    candidates = [shutil.which("python3.13")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.13*/bin/python3.13"))
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "1"], capture_output=True).returncode == 0:
            return candidate
    return sys.executable


@pytest.fixture(scope="module")
def layer() -> tuple[str, Path]:
    """The layer as `sam build` makes it: requirements.txt installed, the package beside it.

    Cached by interpreter and requirements, so that only the first run downloads."""
    python = runtime_python()
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + version.encode()).hexdigest()[:16]
    deps = CACHE / digest
    if not (deps / ".complete").exists():
        shutil.rmtree(deps, ignore_errors=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
             "--target", str(deps), "-r", str(REQUIREMENTS)],
            check=True,
        )  # fmt: skip
        (deps / ".complete").touch()
    layer_dir = CACHE / f"{digest}-layer"
    shutil.rmtree(layer_dir, ignore_errors=True)
    shutil.copytree(deps, layer_dir, ignore=shutil.ignore_patterns(".complete"))
    shutil.copytree(
        REPO / "layers" / "core" / "cognito_backup",
        layer_dir / "cognito_backup",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return python, layer_dir


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, Any]]:
    template = load_yaml((REPO / "template.yaml").read_text(encoding="utf-8"))
    globals_fn = template["Globals"]["Function"]
    found: dict[str, dict[str, Any]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        variables = {
            **globals_fn.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        found[name] = {
            "code": REPO / props["CodeUri"],
            "handler": props.get("Handler", globals_fn.get("Handler")),
            "variables": variables,
        }
    return found


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAws]:
    with LocalAws() as server:
        yield server


@pytest.fixture(scope="module")
def world(local_aws: LocalAws) -> dict[str, str]:
    """A pool in use, a versioned bucket encrypted by default with a KMS key, as deployed."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    kms = session.client("kms", endpoint_url=local_aws.endpoint_url)
    s3 = session.client("s3", endpoint_url=local_aws.endpoint_url)
    idp = session.client("cognito-idp", endpoint_url=local_aws.endpoint_url)
    key_arn = kms.create_key(Description="backup key")["KeyMetadata"]["Arn"]
    signing_arn = local_aws.signing_key(REGION)  # the template's SigningKey (HMAC_256)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}
            ]
        },
    )
    pool_id = create_pool(idp, "runtime-source")
    seed_pool(idp, pool_id, users=30, groups=3)
    target_id = create_pool(idp, "runtime-target")
    # The migration trigger's source: a pool of its own, a client without a secret, a known password.
    old_pool = create_pool(idp, "runtime-migration-source")
    client_id = idp.create_user_pool_client(
        UserPoolId=old_pool, ClientName="migration", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(
        UserPoolId=old_pool,
        Username=MIGRANT,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "migrant@example.com"}],
    )
    idp.admin_set_user_password(
        UserPoolId=old_pool, Username=MIGRANT, Password=MIGRANT_PASSWORD, Permanent=True
    )
    return {
        "forgotten": idp.list_users(UserPoolId=pool_id, Limit=1)["Users"][0]["Username"],
        "key_arn": key_arn,
        "signing_arn": signing_arn,
        "pool_id": pool_id,
        "target_id": target_id,
        "migration_source_id": old_pool,
        "client_id": client_id,
        "endpoint": local_aws.endpoint_url,
    }


def environment(variables: dict[str, Any], world: dict[str, str], tmp: Path) -> dict[str, str]:
    """The function's environment from template.yaml, references resolved to the local AWS,
    plus what Lambda itself sets."""
    resolved = {
        "BackupBucket": BUCKET,
        "BackupPrefix": "backups",
        "UserPoolId": world["pool_id"],
        "LogLevel": "INFO",
        "StandbyUserPoolId": "",  # the default: no standby
        "DrillMaxAgeDays": "35",  # the default
        # The migration trigger is deployed only with these set (condition MigrationEnabled).
        "MigrationSourceUserPoolId": world["migration_source_id"],
        "MigrationSourceClientId": world["client_id"],
    }
    env: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, str):
            env[name] = value
        elif "Ref" in value:
            env[name] = resolved[value["Ref"]]
        elif "Fn::If" in value and value["Fn::If"][0] == "CreateBackupKey":
            env[name] = world["key_arn"]
        elif value == {"Fn::GetAtt": ["SigningKey", "Arn"]}:
            env[name] = world["signing_arn"]
        else:
            raise AssertionError(f"environment variable {name}: unresolved {value}")
    return {
        **env,
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": world["endpoint"],
        "AWS_LAMBDA_FUNCTION_NAME": "runtime-test",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": "/var/task",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    }


def invoke(
    name: str,
    event: dict[str, Any],
    *,
    layer: tuple[str, Path],
    functions: dict[str, dict[str, Any]],
    world: dict[str, str],
    tmp_path: Path,
) -> dict[str, Any]:
    python, layer_dir = layer
    fn = functions[name]
    event_path = tmp_path / f"{name}-event.json"
    event_path.write_text(json.dumps(event))
    proc = subprocess.run(
        [
            python,
            "-I",
            "-S",
            "-c",
            BOOTSTRAP,
            str(fn["code"]),
            str(layer_dir),
            fn["handler"],
            str(event_path),
        ],
        env=environment(fn["variables"], world, tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed in the Lambda environment:\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outside"] == [], f"{name} imported modules from outside Lambda's path: {result['outside']}"
    answer: dict[str, Any] = result["answer"]
    return answer


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return loaded


def test_the_template_names_the_handlers_this_test_runs(functions: dict[str, dict[str, Any]]) -> None:
    # A new function in the template must be run here too.
    assert set(functions) == {
        "FullExportFunction",
        "IncrementalExportFunction",
        "ValidatorFunction",
        "RestoreFunction",
        "MigrateUserFunction",  # conditional: run here as deployed with MigrationSourceUserPoolId
        "DrillFunction",
        "ForgetFunction",
    }


def test_every_handler_runs_with_only_the_runtime_and_the_layer(
    layer: tuple[str, Path], functions: dict[str, dict[str, Any]], world: dict[str, str], tmp_path: Path
) -> None:
    call = {"layer": layer, "functions": functions, "world": world, "tmp_path": tmp_path}

    full = invoke("FullExportFunction", event("full_export"), **call)
    assert full["status"] == "complete" and full["kind"] == "full" and full["counts"]["users"] == 30

    validator_event = event("validator")
    validator_event["detail"]["bucket"]["name"] = BUCKET
    validator_event["detail"]["object"]["key"] = full["manifest_key"]
    verdict = invoke("ValidatorFunction", validator_event, **call)
    assert verdict["status"] == "validated" and verdict["verdict"] == "passed"

    incremental = invoke("IncrementalExportFunction", event("incremental_export"), **call)
    assert incremental["status"] == "complete" and incremental["kind"] == "incremental"

    restore_event = {
        **event("restore"),
        "manifest_key": incremental["manifest_key"],
        "target_user_pool_id": world["target_id"],
    }
    plan = invoke("RestoreFunction", restore_event, **call)
    assert plan["status"] == "complete" and plan["dry_run"] is True and plan["plan"]["users_to_create"] > 0

    restored = invoke("RestoreFunction", {**restore_event, "dry_run": False}, **call)
    assert (
        restored["status"] == "complete" and restored["counts"]["created"] == plan["plan"]["users_to_create"]
    )

    # The restore drill: the first step creates the scratch pool, the next restores and deletes it.
    started = invoke("DrillFunction", event("drill"), **call)
    assert started["status"] == "incomplete" and started["scratch_user_pool_id"]
    drilled = invoke("DrillFunction", started, **call)
    assert drilled["status"] == "complete" and drilled["equal"] and drilled["scratch_pool_deleted"], drilled
    checked = invoke("DrillFunction", {"check": True}, **call)
    assert checked["last_drill_id"] == drilled["drill_id"] and checked["drill_overdue"] is False

    sign_in = event("migrate_user_authentication")
    sign_in["userPoolId"], sign_in["userName"] = world["target_id"], MIGRANT
    sign_in["request"]["password"] = MIGRANT_PASSWORD
    migrated = invoke("MigrateUserFunction", sign_in, **call)
    assert migrated["response"]["finalUserStatus"] == "CONFIRMED"
    assert migrated["response"]["userAttributes"]["email"] == "migrant@example.com"

    # An erasure: out of every snapshot (two rewritten, signed and validated again) and the pool.
    request = {**event("forget"), "usernames": [world["forgotten"]], "delete_from_pool": True}
    forgotten = invoke("ForgetFunction", request, **call)
    assert forgotten["status"] == "complete" and forgotten["snapshots_rewritten"] >= 1, forgotten
    assert forgotten["revalidated"]["failed"] == 0 and forgotten["deleted_from_pool"] == 1
    assert world["forgotten"] not in json.dumps(forgotten)


def test_the_layer_and_the_package_pin_the_same_versions() -> None:
    """pyproject.toml (the CLI, the tests) and the layer must not drift apart."""
    import tomllib

    def pins(lines: list[str]) -> dict[str, str]:
        found = {}
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                found[name.strip().lower()] = version.strip()
        return found

    layer_pins = pins(REQUIREMENTS.read_text().splitlines())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    project_pins = pins(project)
    assert {k: v for k, v in layer_pins.items() if k in project_pins} == project_pins
    assert "aws-lambda-powertools[tracer]" in layer_pins  # Tracer() needs aws_xray_sdk at import
    assert "boto3" in layer_pins and any(d.startswith("boto3") for d in project)
