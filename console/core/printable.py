"""Host text made safe to show on a terminal: control characters are shown, never obeyed.

What loopctl shows comes partly from the host: a sidecar's output and the last line it printed, an
agent's handoff, a foreign process's name and command line, an error with a path in it. Written
to a terminal as it is, `ESC ] 2 ; ... BEL` retitles the operator's window, `ESC [ 2 J` clears
their screen, and other sequences move the cursor, write the clipboard or, on some terminals, type
back into the shell. Each control character becomes its visible picture instead (ESC as `␛`, BEL
as `␇`, DEL as `␡`; C1 controls as `�`), so the text still says what the process wrote.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls; with `lines`, newline and tab stay (they are layout, not commands).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ … ␟
    return "\u2421" if code == 0x7F else "\ufffd"


# The ASCII characters that are not controls, and those plus the layout ones.
_SHOWN = bytes(range(0x20, 0x7F))
_SHOWN_AND_LINES = _SHOWN + b"\n\t"


def printable(text: str, *, lines: bool = True) -> str:
    """`text` with every control character shown as a picture. `lines`: keep newlines and tabs
    (a report of several lines); without, they become pictures too (one cell of a screen)."""
    if text.isascii() and not text.encode("ascii").translate(None, _SHOWN_AND_LINES if lines else _SHOWN):
        return text  # the common case, found in C: a 900 KB JSON report took the regex 7 ms to search
    pattern = _CONTROLS_BUT_LINES if lines else _CONTROLS
    return pattern.sub(_picture, text) if pattern.search(text) else text
