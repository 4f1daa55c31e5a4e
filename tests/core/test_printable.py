"""printable: host text shown on a terminal, its control characters as pictures."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from console.core.printable import printable

HOSTILE = "boom \x1b]2;PWNED\x07 \x1b[2J\x1b[5;1H\r\x08\x7f\x9b31m done"


def test_every_control_character_becomes_its_picture_and_the_words_stay():
    assert printable(HOSTILE) == "boom ␛]2;PWNED␇ ␛[2J␛[5;1H␍␈␡\ufffd31m done"
    assert all(ch in "\n\t" or (0x20 <= ord(ch) != 0x7F and not 0x80 <= ord(ch) <= 0x9F)
               for ch in printable(HOSTILE + "\n\t"))


def test_a_report_keeps_its_lines_and_a_cell_does_not():
    assert printable("a\n\tb") == "a\n\tb"
    assert printable("a\n\tb", lines=False) == "a␊␉b"


def test_text_without_controls_is_returned_as_it_is():
    text = "port 4820 is held by nginx pid 733 · ▲ degraded"
    assert printable(text) is text


@given(st.text(alphabet=st.characters(max_codepoint=0xFF)) | st.text(), st.booleans())
def test_no_control_character_survives_whatever_the_text(text, lines):
    """The ASCII fast path and the general one agree: nothing left is a control (but layout, when kept),
    and text without controls comes back unchanged."""
    shown = printable(text, lines=lines)
    controls = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - ({"\n", "\t"} if lines else set())
    assert not controls & set(shown)
    assert (shown == text) == (not controls & set(text))
    assert len(shown) == len(text)
