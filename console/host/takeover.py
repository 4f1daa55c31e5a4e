"""Taking the host over from an owner that exited: with the owner's config file, as its lease holder
record names it (DESIGN section 5), never this process's own default.

Read the record after taking the lease and before writing our own over it: it is still the owner's.
"""

from __future__ import annotations

from pathlib import Path

from console.core.config import LoadedConfig, load_config
from console.core.errors import ConfigError
from console.core.paths import Paths
from console.core.records import replace
from console.host.lease import Holder, read_holder


def owner_paths(holder: Holder | None, own: Paths) -> Paths:
    """`own` with the config the owner ran; unchanged when the record names none (an older engine)."""
    if holder is None or not holder.config_path:
        return own
    return replace(own, config_path=Path(holder.config_path), config_explicit=holder.config_present)


def takeover_config(own: Paths) -> tuple[Paths, LoadedConfig]:
    """The paths and config to take over with. Raises ConfigError, one line, when the owner's file no
    longer loads (edited, removed): the caller refuses the takeover with that reason."""
    holder = read_holder(own.lock)
    paths = owner_paths(holder, own)
    try:
        return paths, load_config(paths)
    except ConfigError as exc:
        if paths is own:
            raise
        raise ConfigError(f"cannot take over {own.state_dir}: the engine that owned it ran {paths.config_path}, "
                          f"which no longer loads ({exc.message}); fix it, or start `loopctl run --config FILE`") \
            from None
