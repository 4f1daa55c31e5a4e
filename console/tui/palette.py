"""The glyphs and colours of states and levels, for every widget that shows one.

The glyph and the word carry the state on their own, so NO_COLOR and poor terminals lose nothing.
Failure is a light red: with NO_COLOR Textual shows each colour as the grey of its luminance, and
ANSI red (128, 0, 0) comes out at grey 27 on a background near 18, which cannot be read; this red
comes out at 141, and reads as well in colour on a dark background.
"""

from __future__ import annotations

from console.readmodel.tray import Level

RED = "#ff6e6e"

GLYPHS = {Level.OK: "●", Level.PAUSED: "‖", Level.DEGRADED: "▲", Level.DOWN: "✖"}
LEVEL_STYLES = {Level.OK: "green", Level.PAUSED: "cyan", Level.DEGRADED: "yellow", Level.DOWN: f"bold {RED}"}
TRAY_STYLES = {level: style if style.startswith("bold ") else f"bold {style}" for level, style in LEVEL_STYLES.items()}
STATE_STYLES = {
    "ready": "green", "active": "green", "running": "cyan", "succeeded": "green", "starting": "cyan",
    "queued": "cyan", "backoff": "yellow", "escalated": "bold yellow", "timed_out": "yellow",
    "failed": f"bold {RED}", "cancelled": "dim", "stopping": "dim", "stopped": "dim", "disabled": "dim",
}
