"""When the next config poll happens: Retry-After in every RFC 9110 form, garbage, legacy and linear backoff."""

from __future__ import annotations

import calendar
import time

import pytest

from console.controlplane.poll_schedule import (
    LINEAR_STEP,
    RETRY_AFTER_CAP,
    Streak,
    advance,
    next_delay,
    parse_retry_after,
)

NOW = float(calendar.timegm(time.strptime("1994-11-06 08:49:00", "%Y-%m-%d %H:%M:%S")))


@pytest.mark.parametrize("value", [
    "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
    "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
    "Sun Nov  6 08:49:37 1994",  # asctime
])
def test_retry_after_http_dates_in_every_form(value):
    assert parse_retry_after(value, NOW) == 37.0


@pytest.mark.parametrize("value", ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994", "999999999999999999999x", None])
def test_garbage_retry_after_is_none(value):
    assert parse_retry_after(value, NOW) is None


def test_retry_after_seconds_and_a_date_in_the_past():
    assert parse_retry_after(" 120 ", NOW) == 120.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", NOW) == 0.0


def test_delays():
    interval = 300.0
    assert next_delay(200, interval, Streak(), None) == interval
    assert next_delay(304, interval, Streak(), None) == interval
    assert next_delay(429, interval, Streak(failures=1), 42.0) == 42.0
    assert next_delay(503, interval, Streak(failures=1), 10 ** 9) == RETRY_AFTER_CAP  # no server parks a host
    assert next_delay(503, interval, Streak(failures=1), 0.0) == 1.0
    # Garbage Retry-After, other failures: linear.
    linear = [next_delay(503, interval, Streak(failures=n), None) for n in (1, 2, 3)]
    assert linear == [LINEAR_STEP * n for n in (1, 2, 3)]
    assert next_delay(None, interval, Streak(failures=50), None) == interval
    # 404: a control plane without remote config, asked ever more rarely.
    assert [next_delay(404, interval, Streak(not_found=n), None) for n in (1, 2, 3, 10)] == [300, 600, 1200, 3600]


def test_streaks_reset_on_success():
    s = advance(advance(Streak(), 503, True), 503, True)
    assert s == Streak(failures=2)
    assert advance(s, 404, False) == Streak(not_found=1)
    assert advance(s, 200, False) == Streak()
