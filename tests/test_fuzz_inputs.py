"""Hostile inputs the data fuzz tests (test_data_fuzz.py) leave out: Parquet and dataset bombs, service uploads."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunelab.data import readers
from tunelab.data.config import DataConfig
from tunelab.data.prepare import prepare_dataset
from tunelab.errors import DataError

CONFIG = DataConfig(tokenizer="whitespace", force=True)


def write_parquet(path, rows: list[dict], compression="zstd"):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, compression=compression)
    return path


def test_parquet_bomb_is_refused_with_a_message(tmp_path, monkeypatch):
    """A few KB on disk, 8 MB decompressed: over a (lowered) limit, refused before anything is decompressed."""
    path = write_parquet(tmp_path / "bomb.parquet", [{"text": "x" * (8 << 20)}, {"text": "y"}])
    assert path.stat().st_size < 64 * 1024
    monkeypatch.setattr(readers, "MAX_TABLE_BYTES", 4 << 20)
    with pytest.raises(DataError, match=r"decompresses to 8 MB, over the 4 MB limit"):
        prepare_dataset([path], tmp_path / "out", CONFIG)


def test_single_huge_parquet_row_is_refused(tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "row.parquet", [{"text": "x" * (2 << 20)}])
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1 << 20)
    with pytest.raises(DataError, match="record limit"):
        prepare_dataset([path], tmp_path / "out", CONFIG)


def test_wide_rows_are_read_in_small_batches(tmp_path, monkeypatch):
    rows = [{"text": f"record {i} " + "z" * 5000, "label": "a" if i % 2 else "b"} for i in range(300)]
    path = write_parquet(tmp_path / "wide.parquet", rows)
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 64 * 1024)
    assert readers._batch_rows(300 * 5010, 300) == 13
    manifest = prepare_dataset([path], tmp_path / "out", CONFIG)
    assert manifest["counts"]["input"] == 300


def test_saved_dataset_bomb_is_refused(tmp_path, monkeypatch):
    import datasets

    datasets.Dataset.from_list([{"text": "w" * 200_000, "label": "a"}] * 4).save_to_disk(str(tmp_path / "ds"))
    monkeypatch.setattr(readers, "MAX_TABLE_BYTES", 100_000)
    with pytest.raises(DataError, match="dataset decompresses to"):
        prepare_dataset([tmp_path / "ds"], tmp_path / "out", CONFIG)


def test_parquet_with_nested_and_odd_types_gives_records_or_rejects(tmp_path):
    rows = [
        {
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "extra": {"a": [1, 2]},
        },
        {"messages": None, "extra": None},
    ]
    path = write_parquet(tmp_path / "odd.parquet", rows * 60, compression="snappy")
    try:
        manifest = prepare_dataset(
            [path], tmp_path / "out", DataConfig(tokenizer="whitespace", force=True, unknown_keys="ignore")
        )
    except DataError:
        return
    assert manifest["counts"]["input"] == 120


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.binary(max_size=400) | st.text(max_size=200).map(str.encode),
    st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".parquet"]),
)
def test_service_upload_check_gives_400_or_accepts(tmp_path, data, suffix):
    """Every upload is hostile: check_upload accepts it or answers an OpenAI-style 400, never another exception."""
    from tunelab.server.api_errors import ApiError
    from tunelab.server.routes.files import check_upload

    path = tmp_path / f"upload{suffix}"
    path.write_bytes(data)
    try:
        check_upload(path, path.name)
    except ApiError as exc:
        assert exc.status == 400 and exc.message.startswith("Invalid file")
