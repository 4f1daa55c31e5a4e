"""Where loopctl keeps its state and reads its config (DESIGN section 4). Resolution is pure."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from console.core.errors import StateDirError
from console.core.records import View
from console.core.state_home import state_dir_of

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


class Paths(View, frozen=True):
    state_dir: Path
    config_path: Path
    config_explicit: bool  # given by --config: then a missing file is an error, not the embedded default

    @property
    def lock(self) -> Path:
        return self.state_dir / "engine.lock"

    @property
    def socket(self) -> Path:
        return self.state_dir / "engine.sock"

    @property
    def database(self) -> Path:
        return self.state_dir / "loopctl.db"


def resolve_paths(
    state_dir: str | None, config: str | None, env: Mapping[str, str], home: Path
) -> Paths:
    """--state-dir, else $LOOPCTL_HOME, else $XDG_STATE_HOME/loopctl; --config, else $XDG_CONFIG_HOME."""
    state = Path(state_dir_of(state_dir, env, str(home)))
    if config:
        config_path, explicit = Path(config), True
    else:
        xdg_config = env.get("XDG_CONFIG_HOME") or str(home / ".config")
        config_path, explicit = Path(xdg_config) / "loopctl" / "loopctl.toml", False
    return Paths(state_dir=state, config_path=config_path.expanduser().absolute(),
                 config_explicit=explicit)


def check_state_dir(paths: Paths) -> None:
    """For a command that only reads (`--once`, an action, the console before it owns): the state
    directory need not exist, but a path that can never be one is said as such, not as a traceback."""
    state = paths.state_dir
    hint = "choose another with --state-dir or LOOPCTL_HOME"
    if len(os.fsencode(paths.socket)) > MAX_SOCKET_PATH:
        raise StateDirError(
            f"socket path {paths.socket} is longer than {MAX_SOCKET_PATH} bytes: use a shorter --state-dir"
        )
    for place in (state, *state.parents):
        try:
            mode = place.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):  # not there yet, or under a file: the parents say
            continue
        except OSError as exc:
            raise StateDirError(f"state directory {state} cannot be reached ({exc.strerror} at {place}): {hint}") \
                from None
        if not stat.S_ISDIR(mode):
            where = "exists but is not a directory" if place == state else f"has a parent that is not a directory " \
                                                                             f"({place})"
            raise StateDirError(f"state directory {state} {where}: {hint}")
        return


def ensure_state_dir(paths: Paths) -> None:
    """Create the state directory (0700: it holds keys and tokens) or say why it cannot be used."""
    state = paths.state_dir
    hint = "choose another with --state-dir or LOOPCTL_HOME"
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StateDirError(f"state directory {state} exists but is not a directory: {hint}") from None
    except NotADirectoryError:
        raise StateDirError(f"state directory {state}: a parent is not a directory: {hint}") from None
    except PermissionError:
        raise StateDirError(f"state directory {state} cannot be created (permission denied): {hint}") from None
    except OSError as exc:
        raise StateDirError(f"state directory {state} cannot be created ({exc.strerror}): {hint}") from None
    if not state.is_dir():
        raise StateDirError(f"state directory {state} is not a directory: {hint}")
    if not os.access(state, os.W_OK | os.X_OK):
        raise StateDirError(f"state directory {state} is not writable (permission denied): {hint}")
    if len(os.fsencode(paths.socket)) > MAX_SOCKET_PATH:
        raise StateDirError(
            f"socket path {paths.socket} is longer than {MAX_SOCKET_PATH} bytes: use a shorter --state-dir"
        )
