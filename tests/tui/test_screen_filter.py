"""No control character from the host reaches the terminal, whatever widget draws it."""

from __future__ import annotations

from console.core.records import replace
from console.readmodel.tray import Level, Reason, roll_up
from tests.tui.conftest import scenario_app, screen_text, select, wait_snapshot, write_handoff

TITLE = "\x1b]2;PWNED\x1b\\"  # OSC, ended by ST (Rich drops a BEL itself)
CLEAR = "\x1b[2J\x1b[H"


async def test_host_text_with_escape_sequences_is_shown_as_pictures_in_cells_detail_toasts_and_handoffs(tmp_path):
    app, source = scenario_app(tmp_path, state_dir=str(tmp_path / "state"))
    snap = source.snapshot
    monitor = next(s for s in snap.sidecars if s.name == "agent-monitor")
    hostile = replace(monitor, reason_text=f"exited: {TITLE}boom{CLEAR}",
                                  output_tail=[f"{TITLE}tail line{CLEAR}"])
    run = snap.runs[0]
    write_handoff(tmp_path / "state", run.id, f"# next\n\nhandoff {TITLE}text{CLEAR}\n")
    source.snapshot = replace(
        snap, sidecars=[hostile if s.name == "agent-monitor" else s for s in snap.sidecars])
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")
        web = Reason(Level.DOWN, "spawn_error", f"web: {TITLE}gone", "fix", "sidecar:web")
        app.show_snapshot(replace(app.snapshot, tray=roll_up([*app.snapshot.tray.reasons, web])))
        await pilot.pause(0.2)
        sidecar_screen = screen_text(app)
        await select(pilot, app, "4", f"run:{run.id}")
        await pilot.press("enter")  # the detail enlarged: the handoff is at its end
        await pilot.pause()
        run_screen = screen_text(app)
    assert "␛]2;PWNED␛\\boom␛[2J␛[H" in sidecar_screen  # the reason, in the table and the detail pane
    assert "␛]2;PWNED␛\\tail line␛[2J␛[H" in sidecar_screen  # the output tail
    assert "web: ␛]2;PWNED␛\\gone" in sidecar_screen  # the toast
    assert "handoff ␛]2;PWNED␛\\text␛[2J␛[H" in run_screen  # the handoff's markdown
    assert not any(ch in screen for screen in (sidecar_screen, run_screen) for ch in "\x1b")


async def test_a_reason_with_escapes_and_a_bell_keeps_to_its_column_at_80_and_120(tmp_path):
    """Rich measured ESC as 0 cells and dropped BEL; drawn as ␛ and ␇ the row ran over (`…bell (gave ut`)."""
    for size in ((80, 24), (120, 40)):
        app, source = scenario_app(tmp_path)
        snap = source.snapshot
        monitor = next(s for s in snap.sidecars if s.name == "agent-monitor")
        hostile = replace(monitor, reason_text="\x1b[31mred\x1b[0m \x07bell (gave up after 6 failed starts)")
        source.snapshot = replace(snap, sidecars=[hostile if s.name == "agent-monitor" else s for s in snap.sidecars])
        async with app.run_test(size=size) as pilot:
            await wait_snapshot(pilot, app)
            await select(pilot, app, "2", "sidecar:agent-monitor")
            await pilot.pause()
            text = screen_text(app)
        rows = text.splitlines()
        assert all(len(row) <= size[0] for row in rows), size
        assert "␛[31mred␛[0m ␇bell" in text, size  # the bell is shown, not dropped
