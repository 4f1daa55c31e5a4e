"""The terminal driver: Textual's Linux driver, made to survive its terminal going away.

Two ways the console hung forever when an SSH session dropped or a tmux server was killed (found with
`tmux kill-server`, tests/tui/test_tmux.py):
- Textual writes the screen from a thread that dies on the first failed write (EIO once the terminal
  is gone); every later write then waits on its full queue. Here a failed write marks the terminal
  gone and later output is dropped.
- A hangup also sends SIGCONT, and Textual answers every SIGCONT by resuming: it starts a new input
  thread, even while quitting. That thread spins on the dead terminal and, not being a daemon, keeps
  the process from ever exiting. Here only a SIGCONT that follows a suspend (ctrl+z) resumes.
"""

from __future__ import annotations

from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver


class ForgivingOutput:
    """A text file whose writes stop, instead of raising, once the terminal behind it is gone."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._file.write(text)
            except OSError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._file.flush()
            except OSError:
                self.gone = True

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding: as the real file has them
        return getattr(self._file, name)


class HangupSafeDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file = ForgivingOutput(self._file)  # type: ignore[arg-type, assignment]  # a stand-in for the file
        self._suspended = False

    def _sigtstp_application(self, *args: Any) -> None:
        self._suspended = True
        super()._sigtstp_application(*args)  # stops the process here until SIGCONT

    def _sigcont_application(self, *args: Any) -> None:
        if self._suspended:
            self._suspended = False
            super()._sigcont_application(*args)
