import os

import pytest

from console.core.errors import LeaseError
from console.host.lease import Holder, Lease, lease_is_held, may_observe, peer_allowed, read_holder
from tests.conftest import NOBODY, as_user, requires_root


def test_one_holder_at_a_time_and_release_hands_over(tmp_path):
    lock = tmp_path / "engine.lock"
    first = Lease.try_acquire(lock)
    assert first is not None
    assert Lease.try_acquire(lock) is None  # a second open file description is refused
    assert lease_is_held(lock)
    first.release()
    assert not lease_is_held(lock)
    second = Lease.try_acquire(lock)
    assert second is not None
    second.release()


def test_holder_details_are_readable_and_rewritten_in_place(tmp_path):
    lock = tmp_path / "engine.lock"
    lease = Lease.try_acquire(lock)
    inode = lock.stat().st_ino
    lease.record_holder(Holder(pid=123456, uid=os.getuid(), started_at=1.0, version="9"))
    lease.record_holder(Holder(pid=42, uid=os.getuid(), started_at=2.0, version="9"))
    assert read_holder(lock) == Holder(42, os.getuid(), 2.0, "9")
    assert lock.stat().st_ino == inode  # replacing the file would orphan the lock
    lease.release()


def test_a_torn_holder_record_reads_as_unknown(tmp_path):
    lock = tmp_path / "engine.lock"
    lock.write_text('{"pid": 12')
    assert read_holder(lock) is None


def test_lease_is_held_reads_proc_locks_without_taking_the_lock(tmp_path):
    lock = tmp_path / "engine.lock"
    assert not lease_is_held(lock)  # no file
    lock.touch()
    assert not lease_is_held(lock)
    table = tmp_path / "locks"
    st = lock.stat()
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    table.write_text(f"1: FLOCK  ADVISORY  WRITE 99 {dev} 0 EOF\n")
    assert lease_is_held(lock, table)
    table.write_text(f"1: POSIX  ADVISORY  WRITE 99 {dev} 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 98 {dev} 0 EOF\n")
    assert not lease_is_held(lock, table)


@requires_root
def test_a_lease_held_by_another_user_is_a_clear_error(shared_dir):
    state = shared_dir / "state"
    state.mkdir()
    state.chmod(0o777)
    lock = state / "engine.lock"
    lease = Lease.try_acquire(lock)  # held by root, file 0644
    lease.record_holder(Holder(os.getpid(), 0, 1.0, "1"))
    try:
        answer = as_user(NOBODY, lambda: Lease.try_acquire(lock))
    finally:
        lease.release()
    assert answer.startswith("LeaseError")
    assert f"held by pid {os.getpid()} as uid 0 (root)" in answer
    assert "run loopctl as that user" in answer


@requires_root
def test_an_observer_of_another_users_writable_lock_is_refused(shared_dir):
    """The lock file is writable by all, so flock is reached: the holder's uid decides."""
    lock = shared_dir / "engine.lock"
    lock.touch()
    lock.chmod(0o666)
    lease = Lease.try_acquire(lock)
    lease.record_holder(Holder(os.getpid(), 0, 1.0, "1"))
    try:
        answer = as_user(NOBODY, lambda: Lease.try_acquire(lock))
    finally:
        lease.release()
    assert answer.startswith("LeaseError") and "uid 0 (root)" in answer


def test_unusable_lock_path_is_a_clear_error(tmp_path):
    with pytest.raises(LeaseError, match="cannot be opened"):
        Lease.try_acquire(tmp_path / "missing-dir" / "engine.lock")


def test_peer_and_observer_checks_answer_different_questions():
    me = os.getuid()
    assert peer_allowed(me) and peer_allowed(0)
    assert not peer_allowed(NOBODY if me != NOBODY else 1000)  # even when this engine runs as root
    assert may_observe(me)
