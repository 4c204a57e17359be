"""Keyed pseudonyms: HMAC-SHA256 with a secret key, never an unkeyed hash."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from immunodig.clinical import KEY_ENV, PseudonymKeyError, import_clinical, load_key, pseudonymise
from immunodig.store import Store

from .conftest import clinical_frame, write


def test_pseudonym_is_keyed_hmac(key):
    ids = ["100234", " 100235 ", 100236.0]
    out = pseudonymise(ids, key)
    expected = ["P_" + hmac.new(key, s.encode(), hashlib.sha256).hexdigest()[:16]
                for s in ("100234", "100235", "100236")]
    assert out == expected
    assert all(p != "P_" + hashlib.sha256(s.encode()).hexdigest()[:16] for p, s in zip(out, ids[:1]))


def test_different_keys_give_different_ids(key):
    a = pseudonymise(["100234", "100235"], key)
    b = pseudonymise(["100234", "100235"], key + b"-other")
    assert a != b and len(set(a)) == 2
    assert pseudonymise(["100234"], key) == a[:1]


def test_missing_or_short_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PseudonymKeyError, match="--key-file"):
        load_key()
    with pytest.raises(PseudonymKeyError, match="at least 16"):
        pseudonymise(["1"], b"short")
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    with pytest.raises(PseudonymKeyError, match="at least 16"):
        load_key(short)
    monkeypatch.setenv(KEY_ENV, "k" * 32)
    assert load_key() == b"k" * 32


def test_import_with_id_column_stores_pseudonyms_only(tmp_path, monkeypatch, key):
    raw_ids = ["8800123", "8800124", "8800125", "8800126", "8800127"]
    frame = clinical_frame().drop(columns=["patient_id"])
    frame.insert(0, "hospital_number", raw_ids)
    path = write(frame, tmp_path / "c.csv")
    store_path = tmp_path / "s.duckdb"
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PseudonymKeyError):
        import_clinical(path, store_path, id_column="hospital_number")
    key_file = tmp_path / "cohort.key"
    key_file.write_bytes(key + b"\n")
    import_clinical(path, store_path, id_column="hospital_number", key_file=key_file)
    with Store.open(store_path, read_only=True) as store:
        ids = sorted(store.query("select patient_id from clinical")["patient_id"].to_list())
        dump = " ".join(repr(store.query(f"select * from {t}").rows())
                        for t in ("patients", "clinical", "outcomes", "treatments", "imports"))
    assert ids == sorted(pseudonymise(raw_ids, key))
    assert not any(raw in dump for raw in raw_ids)
    assert "hospital_number" not in dump
