"""CLI error handling: one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cognito_backup import cli
from cognito_backup.aws import AwsClients


class DeniedS3:
    def list_objects_v2(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2")

    def get_bucket_encryption(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetBucketEncryption")


class DeniedCognito:
    class meta:
        region_name = "us-east-1"

    def describe_user_pool(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeUserPool")


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(argv, out, err), out.getvalue(), err.getvalue()


def test_access_denied_to_the_bucket_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AwsClients, "s3", lambda self: DeniedS3())
    monkeypatch.setattr(AwsClients, "cognito", lambda self: DeniedCognito())
    code, out, err = run(
        ["export", "--user-pool-id", "us-east-1_X", "--bucket", "b-denied", "--signing-key", "alias/k"]
    )
    assert code == 1 and out == ""
    assert err == "error: access denied to s3://b-denied/backups/us-east-1_X/ (AccessDenied)\n"


def test_access_denied_to_cognito_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class S3Ok(DeniedS3):
        def list_objects_v2(self, **_: Any) -> dict[str, Any]:
            return {}

    monkeypatch.setattr(AwsClients, "s3", lambda self: S3Ok())
    monkeypatch.setattr(AwsClients, "cognito", lambda self: DeniedCognito())
    code, _, err = run(
        ["export", "--user-pool-id", "us-east-1_X", "--bucket", "b-ok", "--signing-key", "alias/k"]
    )
    assert code == 1 and err.startswith("error: access denied to Cognito") and err.count("\n") == 1


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate", "--bucket", "b"], io.StringIO(), io.StringIO())
    assert exc.value.code == 2


@pytest.mark.usefixtures("restore_logger")
def test_logs_never_mix_with_results_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    from cognito_backup.observability import logger

    monkeypatch.setattr(AwsClients, "s3", lambda self: DeniedS3())
    monkeypatch.setattr(AwsClients, "cognito", lambda self: DeniedCognito())
    out, err = io.StringIO(), io.StringIO()
    cli.main(["export", "--user-pool-id", "us-east-1_X", "--bucket", "b-denied"], out, err)
    logger.info("an informational line")
    logger.warning("a warning line")
    assert out.getvalue() == ""
    assert "a warning line" in err.getvalue() and "an informational line" not in err.getvalue()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_and_stays_silent_otherwise() -> None:
    from cognito_backup.models import Counts

    tty, pipe = FakeTerminal(), io.StringIO()
    for stream in (tty, pipe):
        progress = cli.Progress(stream, "export")
        progress._last = -1.0  # no rate limit for the first line
        progress.counts(Counts(users=120, groups=3, memberships=45))
        progress.done()
    assert "export: 120 users, 3 groups, 45 memberships" in tty.getvalue() and tty.getvalue().endswith("\n")
    assert pipe.getvalue() == ""

    tty, pipe = FakeTerminal(), io.StringIO()
    for stream in (tty, pipe):
        progress = cli.Progress(stream, "forget")
        progress._last = -1.0
        progress.step("snapshots", 7)
    assert "forget: 7 snapshots" in tty.getvalue() and pipe.getvalue() == ""


@pytest.mark.parametrize(("status", "exit_code"), [("complete", 0), ("failed", 1)])
def test_restore_passes_mirror_and_no_verify_and_exits_0_only_when_complete(
    monkeypatch: pytest.MonkeyPatch, status: str, exit_code: int
) -> None:
    from cognito_backup import restore
    from cognito_backup.models import utcnow
    from cognito_backup.restore_models import RestoreReport

    seen: dict[str, Any] = {}

    def fake_restore(gateway: Any, store: Any, key: str, target: str, **kwargs: Any) -> RestoreReport:
        seen.update(kwargs)
        return RestoreReport(
            status=status,  # type: ignore[arg-type]
            manifest_key=key,
            snapshot_id="s",
            source_user_pool_id="us-east-1_A",
            target_user_pool_id=target,
            conflict_policy="skip",
            password_strategy="random-confirmed",
            started_at=utcnow(),
        )

    monkeypatch.setattr(restore, "run_restore", fake_restore)
    monkeypatch.setattr(cli, "_clients", lambda args: None)
    monkeypatch.setattr(cli, "_gateway", lambda clients: None)
    monkeypatch.setattr(cli, "_store", lambda args, clients: None)
    argv = [
        "restore",
        "--bucket",
        "b",
        "--manifest",
        "k/manifest.json",
        "--target-user-pool-id",
        "us-east-1_B",
    ]
    code, out, _ = run([*argv, "--mirror", "--no-verify"])
    assert code == exit_code and "restore of s" in out
    assert seen["options"].mirror and not seen["options"].verify


def test_forget_names_nobody_is_a_usage_error_that_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_aws(self: AwsClients) -> None:
        raise AssertionError("no AWS call before the arguments are checked")

    monkeypatch.setattr(AwsClients, "s3", no_aws)
    code, out, err = run(["forget", "--bucket", "b", "--user-pool-id", "us-east-1_X"])
    assert code == 2 and out == ""
    assert err == "error: name at least one person: --username U or --sub S (repeatable)\n"


def test_restore_json_prints_the_report_with_its_per_user_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from cognito_backup import restore
    from cognito_backup.models import utcnow
    from cognito_backup.restore_models import ReportTotals, RestoreFailure, RestoreReport

    def fake_restore(gateway: Any, store: Any, key: str, target: str, **kwargs: Any) -> RestoreReport:
        return RestoreReport(
            status="failed",
            manifest_key=key,
            snapshot_id="s",
            source_user_pool_id="us-east-1_A",
            target_user_pool_id=target,
            conflict_policy="skip",
            password_strategy="random-confirmed",
            started_at=utcnow(),
            sub_map={"old-1": "new-1", "old-2": "new-2"},
            failures=[RestoreFailure(username="u1", reason="refused")],
            totals=ReportTotals(sub_map=2, failures=1),
        )

    monkeypatch.setattr(restore, "run_restore", fake_restore)
    monkeypatch.setattr(cli, "_clients", lambda args: None)
    monkeypatch.setattr(cli, "_gateway", lambda clients: None)
    monkeypatch.setattr(cli, "_store", lambda args, clients: None)
    target = ["--target-user-pool-id", "us-east-1_B"]
    argv = ["restore", "--bucket", "b", "--manifest", "k/manifest.json", *target]
    code, out, _ = run([*argv, "--json"])

    printed = json.loads(out)
    assert code == 1 and printed["status"] == "failed" and printed["schema_version"] == 2
    assert printed["sub_map"] == {"old-1": "new-1", "old-2": "new-2"}
    assert printed["failures"] == [{"username": "u1", "group": None, "reason": "refused"}]
    assert printed["skipped"] == [] and printed["username_map"] == {} and printed["totals"]["sub_map"] == 2
