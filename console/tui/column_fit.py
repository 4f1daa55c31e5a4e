"""How wide each column of a table may be to fit the width it has. Pure.

A table wider than its widget got a horizontal scrollbar across the middle of the screen (the
Overview's reason texts, the Loops tab at 100 columns). Instead, the widest columns are cut to one
shared cap, with an ellipsis, and the narrow ones (ids, states, counts) keep their whole width; the
detail pane shows the cut text in full.
"""

from __future__ import annotations

FLOOR = 6  # a column is never cut below this: "port_…" still says which reason it was
SPARES = 24  # a cut column this wide can give headers their room: it is a long text, cut anyway


def fit(cells: list[int], labels: list[int], room: int) -> list[int]:
    """Each column's width: `cells`, the widest cell of each column; `labels`, its header's width;
    `room`, the content width the table has. The cells are fitted first (a header wider than its
    cells is cut before them: `co…` over `2/2`); then a column whose cells are whole gets its
    header back from the room of a long cut column (a reason text), which can spare it."""
    whole = [max(c, label) for c, label in zip(cells, labels, strict=True)]
    if sum(whole) <= room:
        return whole
    fitted = share(cells, room)
    spare = room - sum(fitted)
    for i, want in enumerate(whole):
        if fitted[i] < cells[i] or fitted[i] >= want:
            continue  # cut (its header goes with it), or whole already
        need = want - fitted[i]
        while need:
            if spare:
                grow = min(spare, need)
                spare -= grow
            else:
                donor = max(range(len(fitted)), key=lambda j: fitted[j] if fitted[j] < cells[j] else -1)
                if fitted[donor] >= cells[donor] or fitted[donor] <= SPARES:
                    break
                grow = min(need, fitted[donor] - SPARES)
                fitted[donor] -= grow
            fitted[i] += grow
            need -= grow
    return fitted


def share(widths: list[int], room: int, floor: int = FLOOR) -> list[int]:
    """`widths` cut to fit `room`, the widest first, down to one shared cap."""
    if sum(widths) <= room:
        return list(widths)
    # Water-filling: the narrowest columns keep their width while what is left, shared by the
    # columns still wider, covers them; the rest share it equally (the first ones get the remainder).
    left, cap, wide = room, 0, len(widths)
    for width in sorted(widths):
        if width * wide <= left:
            left -= width
            wide -= 1
            continue
        cap = max(floor, left // wide)
        break
    extra = max(0, left - cap * wide)
    fitted = []
    for width in widths:
        if width <= cap:
            fitted.append(width)
            continue
        bonus = 1 if extra > 0 and cap + 1 <= width else 0
        extra -= bonus
        fitted.append(min(width, cap + bonus))
    return fitted
