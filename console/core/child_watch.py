"""Children are waited for by pidfd, not by a thread each.

On Python 3.11 asyncio's default child watcher starts one thread per child it waits for (200
sidecars: 201 engine threads). A pidfd (Linux 5.3+) turns a child's exit into a readable file
descriptor on the event loop instead: no thread at all. Python 3.12 made that the default where it
works; on 3.11 the engine installs it itself for the loop it runs on.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings


def _pidfd_works() -> bool:
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel, or a sandbox that refuses the call
        return False
    return True


def wait_for_children_by_pidfd() -> bool:
    """Install a pidfd child watcher for the running loop (3.11 only; later Pythons already do).
    True if it is in use from now on."""
    if sys.version_info >= (3, 12) or not _pidfd_works():
        return False
    loop = asyncio.get_running_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        current = asyncio.get_event_loop_policy().get_child_watcher()
        if isinstance(current, asyncio.PidfdChildWatcher):
            # Already in use: replacing it would close the pidfds of children it still waits for. A new
            # loop in the main thread (asyncio.run) attaches it again by itself.
            return True
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)
    return True
