"""How many file descriptors this process holds, against its soft limit (RLIMIT_NOFILE).

Under systemd's default of 1024 a flood of clients or a leak would make every open fail, each
somewhere else (a sidecar's health check on /proc/stat, a run's output file); the tray says it
once, as what it is."""

from __future__ import annotations

import os
import resource

PRESSURE = 0.9  # of the soft limit: past it, the tray says so
DESCRIPTOR_ERRORS = (23, 24)  # ENFILE (the system's table), EMFILE (this process's limit)


def usage() -> tuple[int, int]:
    """(open descriptors, soft limit); the limit is 0 when there is none to speak of."""
    try:
        held = len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:  # no /proc, or no descriptor left to list it with: that is the answer
        held = -1
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = 0 if soft == resource.RLIM_INFINITY else soft
    return (limit if held < 0 and limit else max(0, held)), limit


def under_pressure(held: int, limit: int) -> bool:
    return limit > 0 and held >= PRESSURE * limit
