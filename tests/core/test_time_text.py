"""How durations and moments read."""

import time

from console.core.time_text import clock_time, duration


def test_a_duration_is_two_units_at_most_and_never_negative():
    assert [duration(s) for s in (0, 45, 725, 10_920, 187_200)] == ["0s", "45s", "12m05s", "3h02m", "2d04h"]
    assert duration(-5) == "0s" and duration(None) == "-"


def test_a_moment_is_local_time_to_the_second():
    at = time.mktime((2026, 1, 1, 3, 2, 20, 0, 0, -1))
    assert clock_time(at) == "2026-01-01 03:02:20"
    assert clock_time(None) == "-"
