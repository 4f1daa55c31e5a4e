"""A thing's log, as the `tail` op, `loopctl logs` and the console's log view read it.

`sidecar:NAME`: its older log (`NAME.log.1`: the last launch's, moved aside at the launch, or what was
rotated out at its size cap) and its current one; `run:ID`: the run's output. The history comes first
(at most `lines` lines, the older file's before the newer's), then, when following, what the files
gain. Following a run ends once it has finished and its output is read to the end; a sidecar is
followed until the reader stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from console.core.actions import ActionError, Target, parse_target
from console.core.logtail import Follower, LogChunk, LogFileError, clamp_lines
from console.runs.executor import run_dir
from console.runs.liveness import RunStatus
from console.sidecars.logs import previous_of

if TYPE_CHECKING:
    from console.host.engine import Engine

POLL_SECONDS = 0.25  # how often a followed file is looked at: the lag behind the writer, at most
KINDS = ("sidecar", "run")


class LogPlan:
    """Which files to read for a target, and how to tell that following it is over."""

    def __init__(self, target: Target, files: list[tuple[Path, str]], over: Callable[[], bool]) -> None:
        self.target = target
        self.files = files  # oldest first; the last one is the one followed
        self.over = over


def plan(engine: Engine, target_text: object) -> LogPlan:
    """The files of `target_text`, or an ActionError saying why it has none."""
    if not isinstance(target_text, str):
        raise ActionError("bad_target", "logs need a target string KIND:NAME (sidecar:NAME or run:ID)")
    target = parse_target(target_text)
    if target.kind == "sidecar":
        runner = engine.supervisor.runner(target)
        log = runner.logfile
        previous = previous_of(log)
        return LogPlan(target, [(previous, f"{previous.name} (older)"), (log, log.name)], lambda: False)
    if target.kind == "run":
        run = engine.loops.find_run(target)
        output = run_dir(engine.paths.state_dir / "runs", run.id) / "output.log"

        def finished() -> bool:
            current = engine.loops.find_run(Target("run", run.id))
            return RunStatus(current.status).finished

        return LogPlan(Target("run", run.id), [(output, f"run {run.id} output.log")], finished)
    raise ActionError("not_applicable", f"logs do not apply to {target.kind} targets: they apply to "
                                        f"{' and '.join(KINDS)} targets")


async def stream(log_plan: LogPlan, lines: object, *, follow: bool,
                 poll_seconds: float = POLL_SECONDS) -> AsyncGenerator[LogChunk, None]:
    """The history, then (with `follow`) each poll's new lines, until the plan is over."""
    count = clamp_lines(lines)
    followers = [Follower(path, label) for path, label in log_plan.files]
    try:
        histories = [follower.history(count) for follower in followers]
        remaining = count
        shown: list[LogChunk] = []
        for chunk in reversed(histories):  # the newest file's last lines first, then older ones' as room allows
            if chunk.note == "missing" and chunk is not histories[-1]:
                continue  # no previous launch: nothing to say about it
            taken = chunk.lines[-remaining:] if remaining else []
            remaining -= len(taken)
            shown.append(LogChunk(chunk.file, taken, chunk.note))
        for chunk in reversed(shown):
            yield chunk
        for follower in followers[:-1]:
            follower.close()  # only the newest file grows
        if not follow:
            return
        newest = followers[-1]
        while True:
            over = log_plan.over()  # asked before the read: what a finished run wrote last is still read
            for chunk in newest.poll():
                yield chunk
            if over:
                return
            await asyncio.sleep(poll_seconds)
    except LogFileError as exc:
        raise ActionError("unreadable", str(exc)) from None
    finally:
        for follower in followers:
            follower.close()
