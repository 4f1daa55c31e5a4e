"""A thing as the store last recorded it: kind, name, state, reason and the detail of its last transition."""

from __future__ import annotations

from typing import Any

from console.core.records import View, field


class ThingView(View, frozen=True):
    kind: str
    name: str
    state: str
    reason: str
    since: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"
