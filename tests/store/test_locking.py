"""One writer: a second process (or Store) opening the store read-write gets a clear error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from immunodig.errors import StoreLockedError
from immunodig.store import Store, query

_OPEN_IN_CHILD = """
import sys
from immunodig.errors import StoreLockedError
from immunodig.store import Store
try:
    Store.open(sys.argv[1], read_only=sys.argv[2] == "ro").close()
except StoreLockedError as exc:
    print(exc)
    sys.exit(3)
print("opened")
"""


def _open_in_child(path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _OPEN_IN_CHILD, str(path), mode],
                          capture_output=True, text=True, timeout=60)


def test_second_process_writer_is_refused_while_first_holds_it(store_path):
    with Store.open(store_path):
        child = _open_in_child(store_path, "rw")
        assert child.returncode == 3, child.stderr
        assert "store is locked by another process" in child.stdout
        reader = _open_in_child(store_path, "ro")
        assert reader.returncode == 3, reader.stderr
    # once the writer has closed, another process can write
    after = _open_in_child(store_path, "rw")
    assert after.returncode == 0 and "opened" in after.stdout


def test_second_writer_in_same_process_is_refused(store_path):
    with Store.open(store_path):
        with pytest.raises(StoreLockedError, match="store is locked"):
            Store.open(store_path)
        with pytest.raises(StoreLockedError):
            query(store_path, "select 1")
    assert query(store_path, "select 1 as one")["one"].to_list() == [1]
