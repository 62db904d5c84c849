"""Remove the grader's temporary folders off the critical path.

Removing one submission's folder (its copy, its HOME, IPython's profile folders) waited ~60 ms for
the disk here (ext4 mounted with `discard`): as long as the CPU work of grading a small notebook,
and graded in parallel those waits queue on the one journal. A thread of this process removes the
folders while the next notebook runs. `drain()` waits until all are gone; `grade()` calls it before
returning, and a grading process (a pool worker, any process at exit) drains before it ends.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator

#: The remover thread's name (a forked child may inherit it: it holds no lock the child needs).
THREAD = "mlc-lab-cleanup"
_queue: queue.Queue[str] = queue.Queue()
_owner: int | None = None  # the pid whose thread serves `_queue`
_lock = threading.Lock()


def remove_later(path: str | os.PathLike[str]) -> None:
    """Remove the folder `path` (all of it, errors ignored) soon, in the background."""
    global _owner
    with _lock:
        if _owner != os.getpid():
            _owner = os.getpid()
            threading.Thread(target=_serve, name=THREAD, daemon=True).start()
            _drain_at_exit()
    _queue.put(os.fspath(path))


@contextlib.contextmanager
def temporary_folder(prefix: str) -> Iterator[str]:
    """Like `tempfile.TemporaryDirectory`, but removed in the background after the block."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        remove_later(path)


def drain() -> None:
    """Wait until every folder handed to `remove_later` in this process is removed."""
    if _owner == os.getpid():
        _queue.join()


def _serve() -> None:
    while True:
        path = _queue.get()
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            _queue.task_done()


def _drain_at_exit() -> None:
    """A multiprocessing child ends without running atexit: register with its finalizers too."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        from multiprocessing import util

        util.Finalize(None, drain, exitpriority=10)
    else:
        atexit.register(drain)


def _forget_inherited() -> None:
    """In a forked child: the parent's queue and thread are not ours (the parent removes its own)."""
    global _queue, _owner, _lock
    _queue, _owner, _lock = queue.Queue(), None, threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited)
