"""The run handoff (DESIGN section 7): what an agent leaves behind in `$LOOPCTL_HANDOFF`.

    {summary, next_action, actionability, evidence: {files_changed, commits, artifacts}, stop_reason?}

Parsing never raises: a missing or malformed file is a `Handoff` with `problem` set, which the
liveness classifier turns into a verdict like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

from console.core.files import NotRegular, read_capped
from console.core.records import View, field

MAX_HANDOFF_BYTES = 256 * 1024


class Evidence(View, frozen=True):
    files_changed: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.files_changed or self.commits or self.artifacts)


class Handoff(View, frozen=True):
    summary: str = ""
    next_action: str = ""
    actionability: str = ""  # done | runnable | blocked | approval_required | "" (unsaid)
    evidence: Evidence = field(default_factory=Evidence)
    stop_reason: str = ""  # an agent may say why it stopped, e.g. max_turns_exhausted
    present: bool = False
    problem: str = ""  # why the file could not be used, "" when it could


def _strings(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float) and str(v).strip()]
    return []


def parse_handoff(raw: bytes | None) -> Handoff:
    if raw is None:
        return Handoff(problem="no handoff file")
    if len(raw) > MAX_HANDOFF_BYTES:
        return Handoff(present=True, problem=f"handoff larger than {MAX_HANDOFF_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Handoff(present=True, problem=f"handoff is not JSON ({type(exc).__name__}: {str(exc)[:80]})")
    except RecursionError:
        return Handoff(present=True, problem="handoff is not JSON (nested too deeply)")
    if not isinstance(data, dict):
        return Handoff(present=True, problem="handoff is not a JSON object")
    evidence = data.get("evidence")
    ev = evidence if isinstance(evidence, dict) else {}

    def text(key: str) -> str:
        value = data.get(key)
        return value.strip() if isinstance(value, str) else ""

    return Handoff(
        summary=text("summary"),
        next_action=text("next_action"),
        actionability=text("actionability").lower(),
        evidence=Evidence(_strings(ev.get("files_changed")), _strings(ev.get("commits")),
                          _strings(ev.get("artifacts"))),
        stop_reason=text("stop_reason").lower(),
        present=True,
    )


UNREADABLE = "handoff_unreadable"


def read_handoff(path: Path) -> Handoff:
    """Opened without following a symlink or blocking on a FIFO, read under the cap (core/files.py)."""
    try:
        raw = read_capped(path, MAX_HANDOFF_BYTES)
    except FileNotFoundError:
        return parse_handoff(None)
    except NotRegular as exc:
        return Handoff(present=True, problem=f"{UNREADABLE}: the handoff is {exc.what}, not a regular file")
    except OSError as exc:
        return Handoff(problem=f"{UNREADABLE}: {exc.strerror}")
    return parse_handoff(raw)
