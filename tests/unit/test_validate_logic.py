"""Pure parts of the validator: event parsing, report and error shapes, part naming."""

from __future__ import annotations

import gzip
import io
from typing import Any, get_args

import pytest
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from conftest import BUCKET, load_event

from cognito_backup import validate
from cognito_backup.errors import (
    LineTooLongError,
    PartTooLargeError,
    SnapshotCorruptError,
    SnapshotInvalidError,
    UsageError,
)
from cognito_backup.handlers import parse_validator_event, validator_handler
from cognito_backup.models import PartKind, Record
from cognito_backup.settings import Settings
from cognito_backup.store import bounded_lines
from cognito_backup.validate import (
    ALLOWED_KINDS,
    ALLOWED_TYPES,
    Failure,
    ValidationReport,
    report_key,
)

MANIFEST = "backups/us-east-1_AbCdEf123/full/2026/11/21/20261121T230000Z/manifest.json"
SETTINGS = Settings.model_validate({"BUCKET_NAME": BUCKET})


# ---------------------------------------------------------------------- the event contract


def test_event_file_parses_with_the_powertools_model() -> None:
    event = S3EventNotificationEventBridgeModel.model_validate(load_event("validator"))

    assert event.detail_type == "Object Created"
    assert event.source == "aws.s3"
    assert event.detail.bucket.name == BUCKET
    assert event.detail.object.key.endswith("/manifest.json")


def test_parse_validator_event_accepts_the_event_file() -> None:
    assert parse_validator_event(load_event("validator")).detail.object.key == MANIFEST


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("detail", "object", "key"), "detail.object.key"),
        (("detail", "bucket", "name"), "detail.bucket.name"),
        (("detail", "bucket"), "detail.bucket"),
        (("detail-type",), "detail-type"),
    ],
)
def test_malformed_event_names_the_missing_field(path: tuple[str, ...], field: str) -> None:
    event = load_event("validator")
    parent: Any = event
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]

    with pytest.raises(UsageError, match=f"^malformed validator event: {field}: Field required$"):
        parse_validator_event(event)


def test_event_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(UsageError, match="expected a JSON object, got list"):
        parse_validator_event([])


def test_key_of_the_wrong_type_is_named() -> None:
    event = load_event("validator")
    event["detail"]["object"]["key"] = 42

    with pytest.raises(UsageError, match=r"detail\.object\.key: Input should be a valid string"):
        parse_validator_event(event)


# ---------------------------------------------------------------------- routing (no AWS needed)


@pytest.mark.parametrize(
    "key",
    [
        MANIFEST.replace("manifest.json", "users-00004.jsonl.gz"),
        MANIFEST.replace("manifest.json", "validation-report.json"),
        "backups/us-east-1_AbCdEf123/checkpoints/export-full.json",
        "notes/manifest.json.bak",
    ],
)
def test_non_manifest_keys_are_ignored(key: str) -> None:
    event = load_event("validator")
    event["detail"]["object"]["key"] = key

    assert validator_handler(event, SETTINGS) == {"status": "ignored", "key": key}


def test_other_detail_types_are_ignored() -> None:
    event = load_event("validator")
    event["detail-type"] = "Object Deleted"

    assert validator_handler(event, SETTINGS)["status"] == "ignored"


def test_a_manifest_outside_the_prefix_is_refused() -> None:
    event = load_event("validator")
    event["detail"]["object"]["key"] = "elsewhere/us-east-1_AbCdEf123/full/2026/11/21/X/manifest.json"

    with pytest.raises(UsageError, match="not under this deployment's prefix 'backups'"):
        validator_handler(event, SETTINGS)


def test_another_bucket_is_refused_before_anything_else() -> None:
    event = load_event("validator")
    event["detail"]["bucket"]["name"] = "elsewhere"

    with pytest.raises(UsageError, match="this validator serves 'cognito-backup-test'"):
        validator_handler(event, SETTINGS)


# ---------------------------------------------------------------------- report and error


def _report(*failures: Failure) -> ValidationReport:
    return ValidationReport(
        manifest_key=MANIFEST, snapshot_id="20261121T230000Z", valid=not failures, failures=list(failures)
    )


def test_verdict_follows_validity() -> None:
    assert _report().verdict == "passed"
    assert _report(Failure(part=None, problem="x")).verdict == "failed"


def test_report_key_sits_beside_the_manifest() -> None:
    assert report_key(MANIFEST) == MANIFEST.replace("manifest.json", "validation-report.json")


def test_report_round_trips_as_json() -> None:
    report = _report(Failure(part=MANIFEST, problem="manifest.json: not JSON (x)"))

    assert ValidationReport.model_validate_json(report.model_dump_json()) == report


def test_invalid_error_names_parts_and_report_but_no_record_content() -> None:
    part = MANIFEST.replace("manifest.json", "memberships-00005.jsonl.gz")
    error = SnapshotInvalidError(
        _report(
            Failure(
                part=part, problem="memberships-00005.jsonl.gz: line 3: membership of 'ghost@example.com' ..."
            ),
            Failure(part=MANIFEST, problem="manifest.json: counts.users is 9, the parts hold 3"),
        )
    )

    assert isinstance(error, SnapshotCorruptError)
    assert str(error) == (
        "snapshot 20261121T230000Z is invalid: 2 problem(s) in manifest.json, memberships-00005.jsonl.gz; "
        f"see {report_key(MANIFEST)}"
    )
    assert "ghost" not in str(error)


# ---------------------------------------------------------------------- tables and helpers


def test_every_part_kind_has_allowed_record_types() -> None:
    assert set(ALLOWED_TYPES) == set(get_args(PartKind))
    assert set().union(*ALLOWED_KINDS.values()) == set(get_args(PartKind))


def test_every_record_type_fits_some_part_kind() -> None:
    union = get_args(get_args(Record)[0])  # Annotated[Union[...], Field(discriminator)] -> members
    record_types = {get_args(model.model_fields["type"].annotation)[0] for model in union}
    assert record_types == set().union(*ALLOWED_TYPES.values())


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("users-00004.jsonl.gz", "users"),
        ("memberships-00012.jsonl.gz", "memberships"),
        ("state-00001.jsonl.gz", "state"),
        ("passwords-00001.jsonl.gz", None),
        ("users-00004.json", None),
        ("manifest.json", None),
    ],
)
def test_kind_from_name(name: str, kind: str | None) -> None:
    assert validate._kind_from_name(name) == kind


def test_lines_are_bounded() -> None:
    body = gzip.compress(b'{"short":1}\n' + b"x" * 100 + b"\n")

    lines = bounded_lines(gzip.GzipFile(fileobj=io.BytesIO(body)), "p/users-00001.jsonl.gz", 10_000, 16)

    assert next(lines) == b'{"short":1}\n'
    with pytest.raises(LineTooLongError) as caught:
        next(lines)
    assert caught.value.lineno == 2


def test_a_part_is_bounded_in_all() -> None:
    body = gzip.compress(b"0123456789\n" * 10)
    with pytest.raises(PartTooLargeError) as caught:
        list(bounded_lines(gzip.GzipFile(fileobj=io.BytesIO(body)), "p/users-00001.jsonl.gz", 50))
    assert caught.value.limit == 50
