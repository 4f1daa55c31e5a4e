"""Knobs only the tests and benchmarks turn, each behind `LOOPCTL_TESTING=1` as the crash points are:
without the flag a stray variable changes nothing in a production engine.

- `LOOPCTL_RETENTION_PERIOD=S`: a retention pass every S seconds instead of every minute, so the
  short soak in the test suite (tests/bench/test_soak_retention.py) reaches its retention horizon
  in seconds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping


def retention_period(default: float, env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    if env.get("LOOPCTL_TESTING") != "1":
        return default
    try:
        seconds = float(env.get("LOOPCTL_RETENTION_PERIOD", ""))
    except ValueError:
        return default
    return seconds if math.isfinite(seconds) and 0.1 <= seconds <= default else default
