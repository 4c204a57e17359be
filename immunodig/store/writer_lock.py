"""One writer per store, across processes and for as long as the writer works.

DuckDB locks the file only while a connection is open; a build keeps its connection short (record
the run, ingest at the end), so a second build or an ``import-clinical`` could slip in between.
The writer lock is an advisory ``flock`` on ``<store>.lock`` beside the store, held by
``build-features`` for the whole build and by every read-write :class:`~immunodig.store.Store`:
a second writer is refused at once, naming who holds it. Within one process the lock is
re-entrant (the build's own store connections pass). The kernel drops the lock when its process
dies, so a killed build never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from immunodig.errors import StoreLockedError

_HELD: dict[Path, list] = {}  # lock file -> [fd, depth]
_GUARD = threading.Lock()


def lock_path(store_path: str | Path) -> Path:
    """``<store>.lock`` beside the store file."""
    p = Path(store_path).expanduser().resolve()
    return p.with_name(p.name + ".lock")


class WriterLock:
    """Hold the store's writer lock (re-entrant within a process); use as a context manager.

    Parameters
    ----------
    store_path : path
        The ``.duckdb`` file.
    holder : str
        What holds it (``build-features``, ``import-clinical``), shown to a refused writer.

    Raises
    ------
    StoreLockedError
        Another process holds the lock.
    """

    def __init__(self, store_path: str | Path, holder: str = "a writer") -> None:
        self.path = lock_path(store_path)
        self.holder = holder
        self._acquired = False

    def acquire(self) -> "WriterLock":
        """Take the lock now or raise."""
        with _GUARD:
            if self.path in _HELD:
                _HELD[self.path][1] += 1
                self._acquired = True
                return self
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = _read_holder(fd)
                os.close(fd)
                raise StoreLockedError(
                    f"store is locked by another process: {self.path.with_suffix('').name} is "
                    f"being written by {who}; wait for it to finish (lock file {self.path})"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({
                "holder": self.holder, "pid": os.getpid(),
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode())
            _HELD[self.path] = [fd, 1]
            self._acquired = True
        return self

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        if not self._acquired:
            return
        self._acquired = False
        with _GUARD:
            entry = _HELD[self.path]
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[self.path]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                os.close(entry[0])

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"{info.get('holder', 'another process')} (pid {info.get('pid')}, since {info.get('since')})"
    except (OSError, ValueError):
        return "another process"
