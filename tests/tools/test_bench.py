"""The arithmetic of `make bench` (cognito_local.benchmath): ceilings, ratios, targets."""

from __future__ import annotations

import pytest

from cognito_local.benchmath import (
    Ceiling,
    Measurement,
    ceiling,
    cpu_model,
    min_listing_calls,
    misses,
    needed_calls,
    pages,
    parse_sizes,
    percent_of_ceiling,
    table,
)

QUOTAS = {"UserList": 30.0, "UserCreation": 50.0, "UserUpdate": 25.0, "UserAccountRecovery": 30.0}


def run(
    operation: str = "export", users: int = 5000, wall: float = 10.0, ceiling_s: float = 9.5, **kw
) -> Measurement:
    defaults = {"calls": 300, "throttled": 0, "peak_rss_mb": 70.0, "base_rss_mb": 66.0}
    return Measurement(operation, users, wall, Ceiling(ceiling_s, "UserList"), **{**defaults, **kw})


def test_throttled_attempts_are_not_work() -> None:
    stats = {"UserList": {"calls": 310, "throttled": 10, "invalid": 0}, "UserRead": {"calls": 0}}
    assert needed_calls(stats) == {"UserList": 300, "UserRead": 0}


def test_the_slowest_category_binds() -> None:
    # Given a restore's calls: 5,000 creations, 4,250 passwords, 5,800 updates
    c = ceiling({"UserCreation": 5000, "UserAccountRecovery": 4250, "UserUpdate": 5800, "Other": 9}, QUOTAS)
    # Then UserUpdate (25 RPS) binds, and a category without a quota costs nothing
    assert c.binding == "UserUpdate"
    assert c.seconds == pytest.approx(232.0)
    assert c.per_category == pytest.approx(
        {"UserCreation": 100.0, "UserAccountRecovery": 4250 / 30, "UserUpdate": 232.0}
    )
    assert ceiling({}, QUOTAS) == Ceiling(0.0, None, {})


def test_percent_of_ceiling() -> None:
    assert percent_of_ceiling(9.0, 10.0) == pytest.approx(90.0)
    assert percent_of_ceiling(5.0, 0.0) == 0.0


def test_listing_calls_count_pages_of_60_and_one_call_for_an_empty_listing() -> None:
    assert [pages(n) for n in (0, 1, 60, 61, 120)] == [1, 1, 1, 2, 2]
    # 16 shards of 312-313 users (6 pages each) and 3 groups (1250, 59, 0 members)
    assert min_listing_calls([313] * 8 + [312] * 8, [1250, 59, 0]) == 16 * 6 + 21 + 1 + 1


def test_targets() -> None:
    good = [
        run(wall=10.0, ceiling_s=9.5),
        run(users=20000, wall=40.0, ceiling_s=37.0, peak_rss_mb=72.0),
        run("restore", wall=200.0, ceiling_s=192.0),
        run("export (CLI, process start included)", users=3000, wall=5.0, ceiling_s=4.3, peak_rss_mb=0.0),
        run("export (CLI, process start included)", users=20000, wall=25.0, ceiling_s=23.8, peak_rss_mb=0.0),
    ]
    assert misses(good) == []

    bad = [
        run(wall=10.0, ceiling_s=8.0, throttled=3),  # 80 %, 1 % throttled
        run(users=20000, wall=40.0, ceiling_s=37.0, peak_rss_mb=80.0),  # +10 MB
        run("restore", wall=200.0, ceiling_s=180.0, ok=False, note="2 failures"),  # 90 %, incomplete
        run("export (CLI, process start included)", users=20000, wall=25.0, ceiling_s=23.0, peak_rss_mb=0.0),
    ]
    found = misses(bad)
    assert len(found) == 6, found
    assert any("80.0 % of the ceiling (target 90 %)" in f for f in found)
    assert any("1.00 % of calls throttled" in f for f in found)
    assert any("grows 10.0 MB from 5,000 to 20,000" in f for f in found)
    assert any("restore 5,000: 90.0 %" in f and "target 95 %" in f for f in found)
    assert any("CLI, process start included) 20,000: 92.0 %" in f and "target 95 %" in f for f in found)
    assert any("2 failures" in f for f in found)


def test_table_has_a_row_per_run() -> None:
    text = table([run(), run("restore", ok=False)])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| run |")
    row = "| export | 5,000 | 10.0 | 9.5 | UserList | 95.0 % | 300 | 0 (0.00 %) | 70.0 | 4.0 | 0.0 / 0.0 |"
    assert row in lines
    assert "restore (INCOMPLETE)" in lines[3]


def test_machine_and_sizes() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert cpu_model("") == "unknown"
    assert parse_sizes("5000, 20k,") == [5000, 20000]
    assert parse_sizes("") == []
    with pytest.raises(ValueError):
        parse_sizes("0")
