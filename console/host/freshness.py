"""Whether a snapshot request is answered from the latest published version at once, or waits for a
build of the state as it is now (issue 19: a busy host answers about as fast as an empty one).

A build of 1,000 loops costs about 35 ms of the engine's loop; waiting for one per request made the
engine's part of a busy host's `--once` 15 ms at the median against an empty host's 1 ms. A quiet or
small host builds in a millisecond, so there a request still reads what was just recorded; a busy
one answers from a version at most `FRESH_SECONDS` old and asks for a newer one, which the next
request (and every watcher) gets. Whoever acted never reads from before the action: an action's
answer waits for a build that shows it.
"""

from __future__ import annotations

FRESH_SECONDS = 0.5  # how far behind the state a busy host's answer may be (watchers: at most 1 s)
CHEAP_BUILD_SECONDS = 0.005  # a build of this much CPU or less is waited for: the answer is current


def answer_at_once(*, age: float, build_cpu: float, due_in: float) -> bool:
    """For a request that finds the state moved on since the published version. `age`: seconds
    since that version was the state's; `build_cpu`: the last build's CPU seconds (a loaded machine
    does not make a small host's build look costly); `due_in`: seconds until the build spacing lets
    the next one start (the state churning: answered at once)."""
    if due_in > 0:
        return True
    return age < FRESH_SECONDS and build_cpu > CHEAP_BUILD_SECONDS
