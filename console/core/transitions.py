"""Transitions are events. Effects that must happen "when X becomes Y" subscribe here, never to the
branch of code that usually performs the transition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from console.core.records import View, field

log = logging.getLogger("loopctl.transitions")


class Transition(View, frozen=True):
    event_id: int
    at: float
    kind: str
    name: str
    previous: str | None  # None: the thing is new
    new: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Transition], None]
Unsubscribe = Callable[[], None]


class _Subscription(View, frozen=True):
    callback: Subscriber
    kind: str | None
    to: str | None
    from_: str | None

    def matches(self, t: Transition) -> bool:
        return (
            (self.kind is None or self.kind == t.kind)
            and (self.to is None or self.to == t.new)
            and (self.from_ is None or self.from_ == t.previous)
        )


class TransitionBus:
    """Synchronous publish after the transition is committed. A failing subscriber is logged and
    does not stop the others (nor undo the committed transition)."""

    def __init__(self) -> None:
        self._subs: list[_Subscription] = []

    def subscribe(
        self,
        callback: Subscriber,
        *,
        kind: str | None = None,
        to: str | None = None,
        from_: str | None = None,
    ) -> Unsubscribe:
        sub = _Subscription(callback, kind, to, from_)
        self._subs.append(sub)

        def unsubscribe() -> None:
            if sub in self._subs:
                self._subs.remove(sub)

        return unsubscribe

    def publish(self, transition: Transition) -> None:
        for sub in list(self._subs):
            if not sub.matches(transition):
                continue
            try:
                sub.callback(transition)
            except Exception:
                log.exception(
                    "subscriber %r failed on %s:%s %s -> %s",
                    sub.callback, transition.kind, transition.name, transition.previous, transition.new,
                )
