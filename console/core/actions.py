"""Operator actions (`reclaim`, `retry`, `cancel`, `restart`, `stop`, `start`, `trigger`, `pause`,
`resume` on `kind:name` targets) and their dispatch.

Capabilities register handlers per verb and target kind; the registry answers everything else
with a structured error, so the socket, the CLI and the TUI all refuse the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from console.core.records import View

log = logging.getLogger("loopctl.actions")

VERBS = ("reclaim", "retry", "cancel", "restart", "stop", "start", "trigger", "pause", "resume")
_TARGET = re.compile(r"^(?P<kind>[a-z][a-z_]*):(?P<name>[^\s:][^\s]*)$")


class ActionError(Exception):
    """A refused action: `code` is stable for programs, `message` is one line for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Target(View, frozen=True):
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_target(text: str) -> Target:
    match = _TARGET.match(text)
    if match is None:
        raise ActionError("bad_target", f"target {text!r} is not KIND:NAME (for example sidecar:web or run:ID)")
    return Target(match["kind"], match["name"])


Handler = Callable[[Target], Awaitable[dict[str, Any]]]


class ActionRegistry:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def register(self, verb: str, kind: str, handler: Handler) -> None:
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}")
        self._handlers[(verb, kind)] = handler

    def kinds_for(self, verb: str) -> list[str]:
        return sorted(kind for (v, kind) in self._handlers if v == verb)

    async def dispatch(self, verb: object, target_text: object, *, read_only: bool) -> dict[str, Any]:
        if not isinstance(verb, str) or verb not in VERBS:
            raise ActionError("unknown_action", f"unknown action {verb!r}: use one of {', '.join(VERBS)}")
        if not isinstance(target_text, str):
            raise ActionError("bad_target", "an action needs a target string KIND:NAME")
        target = parse_target(target_text)
        if read_only:
            raise ActionError("read_only", f"{verb} {target} refused: this engine runs read-only")
        handler = self._handlers.get((verb, target.kind))
        if handler is None:
            kinds = self.kinds_for(verb)
            applies = f"it applies to {', '.join(kinds)} targets" if kinds else "nothing supports it yet"
            raise ActionError("not_applicable", f"{verb} does not apply to {target.kind} targets: {applies}")
        try:
            result = await handler(target)
        except ActionError:
            raise
        except Exception as exc:
            log.exception("action %s %s failed", verb, target)
            raise ActionError("internal_error", f"{verb} {target} failed: {exc}") from exc
        return {"verb": verb, "target": str(target), **result}
