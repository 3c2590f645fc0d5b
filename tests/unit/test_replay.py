"""The one dispatch of change records: each kind reaches its own method of the sink."""

from __future__ import annotations

from typing import Any

import pytest

from cognito_backup.models import (
    GroupDeletedRecord,
    GroupRecord,
    MembershipRecord,
    MembershipRemovedRecord,
    PoolConfigRecord,
    UserDeletedRecord,
    UserRecord,
)
from cognito_backup.replay import CHANGE_TYPES, is_change, replay


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda record: self.calls.append((name, record)) or name


CASES = [
    (UserRecord(username="u", attributes={}, status="CONFIRMED", enabled=True), "put_user"),
    (UserDeletedRecord(username="u"), "drop_user"),
    (GroupRecord(name="g"), "put_group"),
    (GroupDeletedRecord(name="g"), "drop_group"),
    (MembershipRecord(group="g", username="u"), "add_member"),
    (MembershipRemovedRecord(group="g", username="u"), "remove_member"),
]


@pytest.mark.parametrize(("record", "method"), CASES, ids=[m for _, m in CASES])
def test_each_change_reaches_its_method_and_its_answer_comes_back(record: Any, method: str) -> None:
    sink = Recorder()
    assert is_change(record)
    assert replay(record, sink) == method
    assert sink.calls == [(method, record)]


def test_every_change_type_has_a_case_and_nothing_else_is_a_change() -> None:
    assert {type(r) for r, _ in CASES} == set(CHANGE_TYPES)
    config = PoolConfigRecord(user_pool={})
    assert not is_change(config)
    with pytest.raises(ValueError, match="not a change record"):
        replay(config, Recorder())
