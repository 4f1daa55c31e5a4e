"""Children are waited for by pidfd on the event loop, not by a thread each (Python 3.11's default)."""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings

import pytest

from console.core.child_watch import wait_for_children_by_pidfd


async def _threads_while_children_live(count: int) -> tuple[int, list[int | None]]:
    children = [await asyncio.create_subprocess_exec(sys.executable, "-c", "import sys; sys.stdin.read()",
                                                     stdin=asyncio.subprocess.PIPE) for _ in range(count)]
    await asyncio.sleep(0)
    during = threading.active_count()
    for child in children:
        assert child.stdin is not None
        child.stdin.close()
    codes = [await child.wait() for child in children]
    return during, codes


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ waits by pidfd already (nothing to install)")
async def test_twenty_children_add_no_thread_with_the_pidfd_watcher_and_twenty_without():
    before = threading.active_count()
    # asyncio's default first: a thread per child, the cost this removes (and proof the count sees it)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(asyncio.ThreadedChildWatcher())
    during_default, codes = await _threads_while_children_live(20)
    assert codes == [0] * 20 and during_default >= before + 20
    assert wait_for_children_by_pidfd()
    during, codes = await _threads_while_children_live(20)
    assert codes == [0] * 20  # every exit seen, with its status
    assert during <= before


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ waits by pidfd already (nothing to install)")
async def test_installing_again_keeps_waiting_for_the_children_already_running():
    """A second engine start in the process must not close the pidfds of children the first waits for."""
    assert wait_for_children_by_pidfd()
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(0.3)")
    assert wait_for_children_by_pidfd()
    async with asyncio.timeout(10):
        assert await child.wait() == 0
