"""The three state machines of template.yaml, executed: the step loop, its limits and its retries.

Each definition is taken from template.yaml and run by moto's ASL interpreter; its Lambda task is
answered by the real handler (functions/<name>/app.py) in this process against the same moto, or,
where a test needs an answer no real run gives on demand (a step that never finishes, a foreign
answer), by an answer recorded from a real handler and queued in moto's simple-Lambda queue.
Assertions are on the execution: its status, output, error and history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FakeLambdaContext, load_event
from sfn import (
    ACCOUNT,
    MACHINES,
    MOTO_CONFIG,
    REGION,
    LambdaBridge,
    StateMachines,
    record_retry_waits,
    service_exception,
    speed_up_interpreter,
    throttled,
)

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.settings import get_settings
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import validate_snapshot
from cognito_local.seed import create_pool, pool_state, seed_pool

# Step Functions carries at most 256 KB between states; the design aims for a few KB.
SMALL = 8 * 1024

EXPORTS = ("FullExportStateMachine", "IncrementalExportStateMachine")


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    """moto with its ASL interpreter executing state machines, and Lambda without Docker."""
    from moto import mock_aws

    from cognito_local.inprocess import moto_extras

    with mock_aws(config=MOTO_CONFIG), moto_extras():
        yield AwsClients(region=REGION)


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch) -> LambdaBridge:
    speed_up_interpreter(monkeypatch)
    b = LambdaBridge()
    b.install(monkeypatch)
    return b


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_retry_waits(monkeypatch)


@pytest.fixture
def source_pool(
    aws: AwsClients, bucket: str, monkeypatch: pytest.MonkeyPatch, signing_key: str
) -> Iterator[str]:
    """A seeded pool, and the functions' environment as template.yaml gives it (unpaced:
    pacing has its own tests; no margin before the deadline, so a context's remaining time
    alone decides where a step stops)."""
    pool_id = create_pool(aws.cognito(), "sfn-source")
    seed_pool(aws.cognito(), pool_id, users=80, groups=3)
    monkeypatch.setenv("BUCKET_NAME", bucket)
    monkeypatch.setenv("BACKUP_PREFIX", "backups")
    monkeypatch.setenv("USER_POOL_ID", pool_id)
    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "0")
    monkeypatch.setattr("cognito_backup.runtime.DEFAULT_QUOTAS", {})
    get_settings.cache_clear()
    yield pool_id
    get_settings.cache_clear()


@pytest.fixture
def machines(source_pool: str, bridge: LambdaBridge, retry_waits: list[float]) -> StateMachines:
    return StateMachines(bridge)


@pytest.fixture
def snapshot(source_pool: str, store: SnapshotStore, gateway: CognitoGateway) -> str:
    key = run_export(gateway, store, source_pool).manifest_key
    assert key
    return key


@pytest.fixture
def target_pool(aws: AwsClients) -> str:
    return create_pool(aws.cognito(), "sfn-target")


def event_for(machine: str, snapshot: str | None = None, target: str | None = None) -> dict[str, Any]:
    if machine == "RestoreStateMachine":
        return {"manifest_key": snapshot, "target_user_pool_id": target}
    return load_event("full_export" if machine == "FullExportStateMachine" else "incremental_export")


def max_iterations(machines: StateMachines, machine: str) -> int:
    value: int = machines.definition(machine)["States"]["Initialise"]["Parameters"]["max_iterations"]
    return value


def assert_small(run: Any) -> None:
    for data in run.answers() + run.state_data():
        assert len(data.encode()) < SMALL, f"{len(data.encode())} bytes between states"


# ---------------------------------------------------------------- the loop, with the real handlers
@pytest.mark.parametrize("machine", EXPORTS)
def test_export_loops_on_incomplete_and_continues_from_its_checkpoint(
    machines: StateMachines, bridge: LambdaBridge, store: SnapshotStore, machine: str
) -> None:
    # Given three steps with no time left: config, groups and a first handful of the 19 listing
    # pages (a step writes at most 6 pages) -- so neither can finish before the fourth step
    bridge.remaining_ms = [0, 0, 0]

    # When the state machine runs the real export
    run = machines.run(machine, event_for(machine))

    # Then it invoked again on each "incomplete", with the execution's input every time,
    # and succeeded on the fourth answer, "complete", which is the execution's output
    assert run.status == "SUCCEEDED", run.cause
    answers = [json.loads(a) for a in run.answers()]
    assert [a["status"] for a in answers] == ["incomplete"] * 3 + ["complete"]
    assert all(i.event == event_for(machine) for i in bridge.invocations)
    assert run.output == answers[-1]
    # one snapshot, continued from the checkpoint each time, not restarted
    assert {a["snapshot_id"] for a in answers} == {run.output["snapshot_id"]}
    assert run.output["invocations"] == 4 and run.output["kind"] == "full"
    assert (run.output["counts"]["users"], run.output["counts"]["groups"]) == (80, 3)
    assert validate_snapshot(store, run.output["manifest_key"]).valid
    assert_small(run)


def test_incremental_machine_writes_an_incremental_over_the_last_full(
    machines: StateMachines, bridge: LambdaBridge, aws: AwsClients, snapshot: str, source_pool: str
) -> None:
    aws.cognito().admin_create_user(UserPoolId=source_pool, Username="newcomer", MessageAction="SUPPRESS")
    bridge.remaining_ms = [0]

    run = machines.run("IncrementalExportStateMachine", event_for("IncrementalExportStateMachine"))

    assert run.status == "SUCCEEDED", run.cause
    assert [json.loads(a)["status"] for a in run.answers()] == ["incomplete", "complete"]
    assert run.output["kind"] == "incremental" and run.output["base_manifest_key"] == snapshot
    assert run.output["counts"]["users"] == 1


def test_restore_machine_loops_until_the_target_holds_the_snapshot(
    machines: StateMachines,
    bridge: LambdaBridge,
    aws: AwsClients,
    source_pool: str,
    snapshot: str,
    target_pool: str,
) -> None:
    bridge.remaining_ms = [0, 0]  # attributes, then the first group: then the rest in one step

    run = machines.run("RestoreStateMachine", event_for("RestoreStateMachine", snapshot, target_pool))

    assert run.status == "SUCCEEDED", run.cause
    assert [json.loads(a)["status"] for a in run.answers()] == ["incomplete", "incomplete", "complete"]
    assert run.output == json.loads(run.answers()[-1])
    assert run.output["counts"]["created"] == 80
    source, target = pool_state(aws.cognito(), source_pool), pool_state(aws.cognito(), target_pool)
    assert set(target["users"]) == set(source["users"])
    assert target["groups"] == source["groups"]
    assert target["memberships"] == source["memberships"]


# ---------------------------------------------------------------- the limits
def incomplete_answer(
    machine: str, machines: StateMachines, bridge: LambdaBridge, snapshot: str, target: str
) -> dict[str, Any]:
    """A real "incomplete" answer of the machine's function: one step with no time left."""
    machines.deploy(machine)
    logical_id = machines.resources[machine]["Properties"]["DefinitionSubstitutions"]["FunctionArn"][
        "Fn::GetAtt"
    ][0]

    answer: dict[str, Any] = bridge.handlers[logical_id](
        event_for(machine, snapshot, target), FakeLambdaContext(remaining_ms=0)
    )
    assert answer["status"] == "incomplete"
    return answer


@pytest.mark.parametrize("machine", MACHINES)
def test_too_many_incomplete_steps_fail_the_execution(
    machines: StateMachines, bridge: LambdaBridge, snapshot: str, target_pool: str, machine: str
) -> None:
    # Given a function that answers "incomplete" (a real such answer, recorded) at every step
    limit = max_iterations(machines, machine)
    bridge.queue(*[incomplete_answer(machine, machines, bridge, snapshot, target_pool)] * (limit + 1))

    run = machines.run(machine, event_for(machine, snapshot, target_pool))

    # Then the execution stops after max_iterations steps, and fails by name
    assert (run.status, run.error) == ("FAILED", "TooManySteps")
    assert run.attempts == limit
    assert run.of_type("FailStateEntered")[0]["stateEnteredEventDetails"]["name"] == "TooManySteps"


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"status": "ignored", "key": "backups/x/users-00001.jsonl.gz"}, id="unknown-status"),
        pytest.param({"counts": {"users": 3}}, id="no-status"),
        pytest.param({"status": "failed", "counts": {"failed": 1}}, id="failed-returned-not-raised"),
    ],
)
def test_an_answer_without_a_known_status_fails_the_execution(
    machines: StateMachines, bridge: LambdaBridge, machine: str, answer: dict[str, Any]
) -> None:
    bridge.queue(answer, {"status": "complete"})

    run = machines.run(machine, event_for(machine, "backups/x/manifest.json", "us-east-1_Target01"))

    assert (run.status, run.error) == ("FAILED", "UnexpectedResult")
    assert run.attempts == 1


# ---------------------------------------------------------------- the retries
@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("fault", [throttled, service_exception], ids=["throttled", "service-exception"])
def test_lambda_service_errors_are_retried_with_backoff(
    machines: StateMachines, bridge: LambdaBridge, retry_waits: list[float], machine: str, fault: Any
) -> None:
    # Given Lambda itself refusing the first two invocations
    bridge.faults = [fault(), fault()]
    bridge.queue({"status": "complete", "counts": {}})

    run = machines.run(machine, event_for(machine, "backups/x/manifest.json", "us-east-1_Target01"))

    # Then the task is retried after 5 s, then 10 s (IntervalSeconds 5, BackoffRate 2), and succeeds
    assert run.status == "SUCCEEDED", run.cause
    assert run.attempts == 3
    assert retry_waits == [5, 10]


@pytest.mark.parametrize("machine", MACHINES)
def test_lambda_service_errors_give_up_after_six_retries(
    machines: StateMachines, bridge: LambdaBridge, retry_waits: list[float], machine: str
) -> None:
    bridge.faults = [throttled() for _ in range(7)]

    run = machines.run(machine, event_for(machine, "backups/x/manifest.json", "us-east-1_Target01"))

    assert (run.status, run.error) == ("FAILED", "Lambda.TooManyRequestsException")
    assert run.attempts == 7
    assert retry_waits == [5, 10, 20, 40, 80, 160]


@pytest.mark.parametrize("machine", EXPORTS)
def test_a_crashed_step_is_retried_and_continues_from_its_checkpoint(
    machines: StateMachines, bridge: LambdaBridge, retry_waits: list[float], machine: str
) -> None:
    # Given a first step that checkpoints, and a second that crashes (as on a lost sandbox)
    bridge.remaining_ms = [0]
    bridge.faults = [None, RuntimeError("the sandbox went away")]

    run = machines.run(machine, event_for(machine))

    # Then the crash is retried once after 60 s (States.TaskFailed), and the export goes on
    assert run.status == "SUCCEEDED", run.cause
    assert [i.error_type for i in bridge.invocations] == [None, "RuntimeError", None]
    assert run.of_type("TaskFailed")[0]["taskFailedEventDetails"]["error"] == "RuntimeError"
    assert retry_waits == [60]
    assert run.output["invocations"] == 2  # the crashed step never reached the handler


@pytest.mark.parametrize("machine", MACHINES)
def test_a_step_that_keeps_crashing_fails_after_two_retries(
    machines: StateMachines, bridge: LambdaBridge, retry_waits: list[float], machine: str
) -> None:
    bridge.faults = [RuntimeError("the sandbox went away") for _ in range(3)]

    run = machines.run(machine, event_for(machine, "backups/x/manifest.json", "us-east-1_Target01"))

    assert (run.status, run.error) == ("FAILED", "RuntimeError")
    assert run.attempts == 3
    assert retry_waits == [60, 120]


def test_an_export_of_a_missing_pool_fails_at_once(
    machines: StateMachines, bridge: LambdaBridge, retry_waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment whose USER_POOL_ID names no pool: no retry can make it right
    monkeypatch.setenv("USER_POOL_ID", "us-east-1_NoSuchPool")
    get_settings.cache_clear()

    run = machines.run("FullExportStateMachine", event_for("FullExportStateMachine"))

    assert (run.status, run.error) == ("FAILED", "PoolNotFoundError")
    assert run.attempts == 1 and retry_waits == []


def test_a_restore_that_finished_with_failures_is_not_run_again(
    machines: StateMachines,
    bridge: LambdaBridge,
    retry_waits: list[float],
    store: SnapshotStore,
    snapshot: str,
    target_pool: str,
) -> None:
    # Given a restore asked for a user the snapshot does not hold: it finishes, reports the
    # failure beside the snapshot, and raises RestoreFailedError
    event = {**event_for("RestoreStateMachine", snapshot, target_pool), "usernames": ["nobody"]}

    run = machines.run("RestoreStateMachine", event)

    # Then the execution fails with it at once: a second run would write a second report and
    # name it in the error, hiding the first
    assert (run.status, run.error) == ("FAILED", "RestoreFailedError")
    assert run.attempts == 1 and retry_waits == []
    reports = [
        k
        for k in store.list_keys(snapshot.rsplit("/", 1)[0] + "/")
        if "restore-report" in k and k.endswith(".json")
    ]  # its parts aside
    assert len(reports) == 1, reports


# ---------------------------------------------------------------- a large restore, through the loop
# Large enough that an answer carrying anything per user (a username is ~10 bytes) would be far
# over SMALL, and that the restore takes several steps; small enough to run in seconds, not
# minutes, on a busy CI machine (the 20,000-user figures are `make bench`'s job).
BIG = 5_000


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def moto_pool_state(pool_id: str) -> dict[str, Any]:
    """A pool as moto holds it, read in memory: thousands of users through moto's ListUsers are slow."""
    from moto.backends import get_backend

    pool = get_backend("cognito-idp")[ACCOUNT][REGION].user_pools[pool_id]
    return {
        "users": {
            name: (u.enabled, {k: v for k, v in u.attribute_lookup.items() if k != "sub"})
            for name, u in pool.users.items()
        },
        "groups": {n: (g.description, g.precedence, g.role_arn) for n, g in pool.groups.items()},
        "memberships": {(n, u.username) for n, g in pool.groups.items() for u in g.users},
    }


def test_a_restore_of_thousands_of_users_completes_through_the_state_machine(
    machines: StateMachines,
    bridge: LambdaBridge,
    aws: AwsClients,
    store: SnapshotStore,
    gateway: CognitoGateway,
    target_pool: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a pool of 5,000 users (seeded straight into moto), exported in full. No groups: their
    # thousands of memberships would add a minute to a test of the loop and of answer sizes; groups
    # and memberships through the state machine are checked on the small pool above.
    big_pool = create_pool(aws.cognito(), "sfn-big")
    seed_pool(aws.cognito(), big_pool, users=BIG, groups=0)
    snapshot = run_export(gateway, store, big_pool).manifest_key
    assert snapshot
    source = moto_pool_state(big_pool)
    assert len(source["users"]) == BIG

    # When RestoreStateMachine restores it into a new pool, unpaced, in steps: the first three with
    # no time left (custom attributes, then a chunk of users each), the last with the whole 15 minutes
    bridge.remaining_ms = [0] * 3
    run = machines.run("RestoreStateMachine", event_for("RestoreStateMachine", snapshot, target_pool))

    # Then every answer the function gave is small and names nobody (Step Functions refuses an
    # answer over 256 KB: the execution fails with States.DataLimitExceeded)
    sizes = [len(i.answer) for i in bridge.invocations]
    with capsys.disabled():
        print(f"\n{BIG} users restored through RestoreStateMachine: answers of {sizes} bytes")
    usernames = set(source["users"])
    for invocation, size in zip(bridge.invocations, sizes, strict=True):
        assert size < SMALL, f"an answer of {size} bytes"
        named = {s for s in strings_in(invocation.result) if s in usernames or "@" in s}
        assert not named, f"an answer names users: {sorted(named)[:3]}"
    # And it completes after 4 steps, the target holding what the snapshot holds
    assert run.status == "SUCCEEDED", run.cause
    assert [json.loads(a)["status"] for a in run.answers()] == ["incomplete"] * 3 + ["complete"]
    assert run.output["counts"]["created"] == BIG
    target = moto_pool_state(target_pool)
    assert target == source
