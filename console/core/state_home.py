"""Which state directory a command means (DESIGN section 4), with nothing but `os`.

`loopctl dial-stdio` resolves it on every ssh session a fleet or `--host` opens, on the far host, and
starts without pathlib or loopctl's records for it (dial.py); `paths.resolve_paths` reads the same
rule from here, so the two can never disagree about where a host's engine is.
"""

from __future__ import annotations

import os

# typing itself costs the lean path ~5 ms; mypy takes any name TYPE_CHECKING as true
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def state_dir_of(state_dir: str | None, env: Mapping[str, str], home: str) -> str:
    """--state-dir, else $LOOPCTL_HOME, else $XDG_STATE_HOME/loopctl: `~` expanded, made absolute."""
    if state_dir:
        chosen = state_dir
    elif env.get("LOOPCTL_HOME"):
        chosen = env["LOOPCTL_HOME"]
    else:
        chosen = os.path.join(env.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state"), "loopctl")
    chosen = os.path.expanduser(chosen)
    # joined, not normpath'd: `a/../b` stays what the operator wrote, as Path.absolute() keeps it
    return chosen if os.path.isabs(chosen) else os.path.join(os.getcwd(), chosen)
