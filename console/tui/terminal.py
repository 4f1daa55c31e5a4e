"""The terminal driver: Textual's Linux driver, made to survive its terminal going away.

Textual writes the screen from a thread that dies on the first failed write (EIO once an SSH session
drops or a tmux server is killed). Every later write then waits on a full queue, forever, and the app
can never finish quitting: the console hung at exit, its engine half stopped (found with SIGHUP from
`tmux kill-server`). Here a failed write marks the terminal gone and later output is dropped.
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
        self._file = ForgivingOutput(self._file)  # type: ignore[arg-type]
