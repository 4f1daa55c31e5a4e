"""Whether a snapshot request is answered from the latest published version at once, or waits for a
build of the state as it is now (issue 19: a busy host answers about as fast as an empty one).

A build of 1,000 loops costs about 35 ms of the engine's loop; waiting for one per request made the
engine's part of a busy host's `--once` 15 ms at the median against an empty host's 1 ms. A quiet or
small host builds in a millisecond, so there a request still reads what was just recorded; a busy
one answers from a version at most `FRESH_SECONDS` old and asks for a newer one, which the next
request (and every watcher) gets. Whoever acted never reads from before the action: an action's
answer waits for a build that shows it, and an action that was not asked over the socket (the owner's
console acts in-process) leaves its version (Engine.acted_version): a request that finds an older one
published waits for the build.
"""

from __future__ import annotations

FRESH_SECONDS = 0.5  # how far behind the state a busy host's answer may be (watchers: at most 1 s)
OLDEST_SECONDS = 1.0  # the oldest an answer is while the state churns: Engine's MAX_BUILD_SPACING
CHEAP_BUILD_SECONDS = 0.005  # builds of this much CPU or less are waited for: the answer is current


def answer_at_once(*, age: float, build_cpu: float, due_in: float, acted: bool = False) -> bool:
    """For a request that finds the state moved on since the published version. `age`: seconds
    since that version was the state's; `build_cpu`: what the engine's builds steadily cost in CPU (one
    costly build is no proof: Engine.build_cpu); `due_in`: seconds until the build spacing lets the next one
    start (the state churning: answered at once from a version the spacing kept, never one older than
    OLDEST_SECONDS: other readers' builds run the spacing too); `acted`: the published version is from
    before the last action."""
    if acted:
        return False
    if due_in > 0:
        return age < OLDEST_SECONDS
    return age < FRESH_SECONDS and build_cpu > CHEAP_BUILD_SECONDS
