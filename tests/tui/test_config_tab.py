"""The Config tab's body as plain text: aligned, wrapped under its values, counted in words."""

from __future__ import annotations

from console.tui.config_tab import config_body
from console.tui.scenario import NOW, scenario_snapshot
from tests.tui.conftest import rendered


def text(width: int) -> list[str]:
    return rendered(config_body(scenario_snapshot(), NOW), width)


def test_a_long_value_wraps_under_its_value_and_both_sections_share_one_value_column():
    lines = text(80)
    column = lines[next(i for i, line in enumerate(lines) if line.startswith("state "))].index("probation:")
    rollback = next(i for i, line in enumerate(lines) if line.startswith("last rollback"))
    assert lines[rollback].index('"5d0b77"') == column
    wrapped = lines[rollback + 1]
    assert wrapped[:column].strip() == "" and wrapped[column] != " "  # the rest of the detail, under the value
    host = next(line for line in lines if line.split()[:2] == ["host", "edge-1"])
    assert host.index("edge-1") == column


def test_the_local_config_counts_in_words():
    assert any(line.split()[:7] == ["declares", "3", "sidecars,", "3", "loops,", "1", "plugin"] for line in text(120))
