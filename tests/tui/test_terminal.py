"""The terminal driver's output when the terminal goes away (an SSH drop, a killed tmux server)."""

from __future__ import annotations

import errno
import io
import threading

from textual.drivers._writer_thread import WriterThread

from console.tui.terminal import ForgivingOutput


class HungUpTerminal(io.StringIO):
    """Takes `ok` writes, then fails as a hung-up tty does (EIO)."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.ok = ok

    def write(self, text: str) -> int:
        if self.ok <= 0:
            raise OSError(errno.EIO, "Input/output error")
        self.ok -= 1
        return super().write(text)


def test_writes_after_the_terminal_went_away_are_dropped_not_raised():
    terminal = HungUpTerminal(ok=1)
    out = ForgivingOutput(terminal)
    out.write("frame 1")
    out.write("frame 2")
    out.flush()
    assert out.gone and terminal.getvalue() == "frame 1"
    assert out.write("frame 3") == len("frame 3")


def test_textuals_writer_thread_keeps_draining_so_quitting_never_blocks():
    """Textual's writer thread dies on a failed write and its bounded queue then blocks every writer:
    with the forgiving output it drains to the end and stops when asked."""
    writer = WriterThread(ForgivingOutput(HungUpTerminal(ok=2)))  # type: ignore[arg-type]
    writer.start()
    done = threading.Event()

    def write_a_lot_then_stop() -> None:
        for i in range(500):  # far more than the queue holds (30)
            writer.write(f"frame {i}\n")
        writer.stop()
        done.set()

    threading.Thread(target=write_a_lot_then_stop, daemon=True).start()
    assert done.wait(timeout=10), "writing after the terminal went away blocked"
    assert not writer.is_alive()


def test_without_it_textuals_writer_thread_dies_and_writers_block():
    """The failure this module exists for, shown on Textual itself (if Textual fixes it, this fails: drop
    the workaround)."""
    writer = WriterThread(HungUpTerminal(ok=0))  # type: ignore[arg-type]
    # The thread's death is the point: keep its traceback out of the test log.
    threading.excepthook, previous = (lambda _args: None), threading.excepthook
    try:
        writer.start()
        blocked = threading.Event()

        def write_a_lot() -> None:
            for i in range(500):
                writer.write(f"frame {i}\n")
            blocked.set()  # reached only if nothing blocked

        threading.Thread(target=write_a_lot, daemon=True).start()
        assert not blocked.wait(timeout=2)
        assert not writer.is_alive()
    finally:
        threading.excepthook = previous
