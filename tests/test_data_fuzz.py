"""Property tests: no input, however broken, raises anything but DataError, and counts reconcile."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunelab.data import readers
from tunelab.data.config import DataConfig
from tunelab.data.prepare import prepare_dataset
from tunelab.errors import DataError

CONFIG = DataConfig(tokenizer="whitespace", force=True)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GOOD = json.dumps(
    {"messages": [{"role": "user", "content": "a question here"}, {"role": "assistant", "content": "an answer"}]}
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["messages", "role", "content", "text", "label", "prompt", "completion", "x"])
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def prepare_or_refuse(tmp_path, name: str, data: bytes) -> dict | None:
    """The manifest, or None when prepare refused with a DataError; anything else fails the test."""
    path = tmp_path / name
    path.write_bytes(data)
    try:
        manifest = prepare_dataset([path], tmp_path / "out", CONFIG)
    except DataError as exc:
        assert exc.message
        return None
    c = manifest["counts"]
    assert c["input"] == c["kept"] + c["rejected"] + c["duplicates_exact"] + c["duplicates_near"]
    assert sum(manifest["splits"].values()) == c["kept"]
    return manifest


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["f.jsonl", "f.json", "f.csv", "f.tsv", "f.parquet", "f.txt"]))
def test_random_bytes_never_crash(tmp_path, data, name):
    prepare_or_refuse(tmp_path, name, data)


@FUZZ
@given(st.lists(json_values, min_size=1, max_size=8))
def test_random_json_lines_never_crash_and_reconcile(tmp_path, values):
    lines = [json.dumps(v) for v in values] + [GOOD]
    manifest = prepare_or_refuse(tmp_path, "f.jsonl", ("\n".join(lines) + "\n").encode())
    assert manifest is None or manifest["counts"]["input"] == len(lines)


@pytest.mark.parametrize(
    "name, data",
    [
        ("nested.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n"),
        ("nested_obj.jsonl", b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n"),
        ("binary.jsonl", bytes(range(256)) * 4),
        ("bad.csv", b'a,b\n"unterminated\n'),
        ("bad.parquet", b"PAR1 not really"),
        ("empty.jsonl", b""),
        ("nested.json", b"[" * 100_000),
    ],
)
def test_known_bad_files_give_data_error(tmp_path, name, data):
    assert prepare_or_refuse(tmp_path, name, data) is None


def test_huge_line_refused_with_message(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 4096)
    huge = b'{"text": "' + b"x" * 20_000 + b'"}\n'
    (tmp_path / "h.jsonl").write_bytes(huge)
    with pytest.raises(DataError, match="line_too_long"):
        prepare_dataset([tmp_path / "h.jsonl"], tmp_path / "out", CONFIG)
    manifest = prepare_or_refuse(tmp_path, "h2.jsonl", (GOOD + "\n").encode() + huge)
    assert manifest["reject_reasons"] == {"line_too_long": 1}
