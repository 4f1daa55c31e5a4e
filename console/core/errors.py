"""Errors an operator can act on: one line, what went wrong, where, and what to do."""

from __future__ import annotations

# Exit codes (DESIGN section 3 and 8): monitoring mapping plus "bad input" = 2.
EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3
EXIT_BAD_INPUT = 2
EXIT_RELOAD = 75  # `loopctl run`: new code on disk, restart me (systemd: RestartForceExitStatus=75)
MONITORING_WORDS = {EXIT_OK: "OK", EXIT_WARNING: "WARNING", EXIT_CRITICAL: "CRITICAL", EXIT_UNKNOWN: "UNKNOWN"}


class LoopctlError(Exception):
    """An expected failure: printed as one line, never as a traceback."""

    exit_code: int = EXIT_BAD_INPUT
    code: str = "bad_input"  # for `--format json`: what kind of failure, as a word

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(LoopctlError):
    """The host config is missing, unreadable or invalid."""

    code = "config_invalid"


class StateDirError(LoopctlError):
    """The state directory cannot be created, written or read."""

    code = "state_dir_unusable"


class StoreError(LoopctlError):
    """The state database is corrupt, from a newer loopctl, or unusable."""

    code = "store_unusable"


class LeaseError(LoopctlError):
    """The engine lease (engine.lock) cannot be taken by this process."""

    code = "lease_unavailable"


class OwnerUnavailable(LoopctlError):
    """An engine owns the host but did not answer in time: state unknown."""

    exit_code = EXIT_UNKNOWN
    code = "engine_unavailable"
