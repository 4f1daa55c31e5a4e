"""Named crash points for the crash tests (the apply's matrix, the spawn windows of runs and sidecars).

With `LOOPCTL_TESTING=1` and `LOOPCTL_CRASH_AT=<point>`, the engine reaching that point writes
`<state>/crashpoint` (the point's name) and freezes; the test then SIGKILLs it, as a power cut or
the OOM killer would. Without the testing flag the variable is ignored: a stray environment
variable can never freeze a production engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from console.core.atomic import atomic_write_text

APPLY_POINTS = (  # the remote apply's steps, in order
    "after_shape_check",
    "after_plugin_install",
    "after_slot_write",
    "after_etag_write",
    "after_marker_write",
    "after_flip",
    "during_restart",
    "during_probation",
)
SPAWN_POINTS = (
    "run_after_spawn",  # a run's process exists, its pid is not yet in the ledger
    "sidecar_after_spawn",  # a sidecar's process exists, its PID file is not yet written
)
POINTS = APPLY_POINTS + SPAWN_POINTS


class CrashPoints:
    def __init__(self, state_dir: Path, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        wanted = env.get("LOOPCTL_CRASH_AT", "") if env.get("LOOPCTL_TESTING") == "1" else ""
        self.armed = wanted if wanted in POINTS else ""
        self.marker = state_dir / "crashpoint"

    def __call__(self, point: str) -> None:
        assert point in POINTS, point
        if point != self.armed:
            return
        # Atomic: a test polling for the marker never reads it half written.
        atomic_write_text(self.marker, point)
        while True:  # frozen mid-apply: nothing more is written until the SIGKILL arrives
            time.sleep(3600)
