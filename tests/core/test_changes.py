import asyncio

from console.core.changes import ChangeFeed


async def test_waiters_wake_on_change_and_slow_ones_coalesce():
    feed = ChangeFeed()
    waiter = asyncio.create_task(feed.wait_newer(0))
    await asyncio.sleep(0)
    assert not waiter.done()
    feed.bump()
    assert await waiter == 1
    feed.bump()
    feed.bump()
    assert await feed.wait_newer(1) == 3  # a slow watcher gets the newest version, not each one


async def test_cancelled_waiter_is_forgotten():
    feed = ChangeFeed()
    waiter = asyncio.create_task(feed.wait_newer(0))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    feed.bump()
    assert feed._waiters == []
