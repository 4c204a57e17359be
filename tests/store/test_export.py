"""patient_dataset exported for R: the view's rows, and every feature column described."""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq
import pytest

from immunodig.features.catalog import catalog
from immunodig.store import Store, query
from immunodig.store.export import export_patient_dataset


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_carries_the_rows_and_the_catalogue_definitions(tmp_path, suffix):
    store = tmp_path / "s.duckdb"
    with Store.open(store) as s:
        s.sync_feature_catalog(catalog().values())
        s.connection.execute("insert into patients (patient_id) values ('P001'), ('P002')")
    table, dictionary, n = export_patient_dataset(store, tmp_path / f"dataset{suffix}")
    assert n == 2
    frame = pl.read_parquet(table) if suffix == ".parquet" else pl.read_csv(table)
    assert frame["patient_id"].to_list() == ["P001", "P002"]
    assert frame.columns == query(store, "select * from patient_dataset").columns
    cols = pl.read_csv(dictionary)
    spec = catalog()["til_density_tumour_region_per_mm2"]
    row = cols.filter(pl.col("column") == spec.name).row(0, named=True)
    assert row["unit"] == spec.unit and row["description"] == spec.description
    if suffix == ".parquet":
        field = pq.read_schema(table).field(spec.name)
        assert field.metadata[b"description"].decode().endswith(spec.description)


def test_export_refuses_an_unknown_format(tmp_path):
    from immunodig.errors import ConfigError

    with pytest.raises(ConfigError, match="parquet or .csv"):
        export_patient_dataset(tmp_path / "s.duckdb", tmp_path / "x.xlsx")
