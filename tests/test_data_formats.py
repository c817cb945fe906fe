"""Every file type and schema reads into the normalised record of its task."""

import json

import pytest

from tunelab.data.config import DataConfig
from tunelab.data.prepare import load_prepared, prepare_dataset
from tunelab.errors import DataError

FORCE = {"tokenizer": "whitespace", "force": True}


def rows(n: int) -> list[dict]:
    return [{"text": f"sentence number {i} says something {i % 3}", "label": ["a", "b", "c"][i % 3]} for i in range(n)]


def prepared(tmp_path, path, **options):
    prepare_dataset([path], tmp_path / "out", DataConfig(**{**FORCE, **options}))
    return load_prepared(tmp_path / "out")


def all_records(data) -> list[dict]:
    return data.train + data.validation + data.test


def test_csv_and_tsv_with_label_aliases(tmp_path):
    (tmp_path / "d.csv").write_text("text,category\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows(30)))
    data = prepared(tmp_path, tmp_path / "d.csv")
    assert data.task == "classification" and {r["label"] for r in all_records(data)} == {"a", "b", "c"}
    (tmp_path / "d.tsv").write_text("utterance\tlabel\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in rows(30)))
    data = prepared(tmp_path, tmp_path / "d.tsv", map={"text": "utterance"})
    assert len(all_records(data)) == 30 and set(all_records(data)[0]) == {"text", "label"}


def test_parquet_and_hf_dataset_folder(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows(20)), tmp_path / "d.parquet")
    assert len(all_records(prepared(tmp_path, tmp_path / "d.parquet"))) == 20
    datasets.Dataset.from_list(rows(25)).save_to_disk(str(tmp_path / "hf"))
    assert len(all_records(prepared(tmp_path, tmp_path / "hf"))) == 25


def test_json_array_keeps_real_line_numbers(tmp_path):
    items = [{"instruction": f"do task {i}", "input": "", "output": f"done {i}"} for i in range(5)] + [
        {"instruction": "x"}
    ]
    (tmp_path / "a.json").write_text(json.dumps(items, indent=1))
    data = prepared(tmp_path, tmp_path / "a.json")
    assert all_records(data)[0]["messages"][0]["role"] == "user"
    reject = json.loads((tmp_path / "out" / "rejects.jsonl").read_text().splitlines()[0])
    assert reject["category"] == "missing_field" and reject["line"] == 27  # 6th element: line 2 + 5 lines per element


@pytest.mark.parametrize(
    "record, expected",
    [
        (
            {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        ),
        (
            {"instruction": "do", "input": "this", "output": "ok"},
            {"messages": [{"role": "user", "content": "do\n\nthis"}, {"role": "assistant", "content": "ok"}]},
        ),
        (
            {"prompt": "p", "completion": "c<|endoftext|>"},
            {"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]},
        ),
        ({"source": "s", "target": "t"}, {"source": "s", "target": "t"}),
        ({"text": "plain  text\r\n\n\n\nmore\u0007"}, {"text": "plain  text\n\nmore"}),
    ],
)
def test_schemas_normalise(tmp_path, record, expected):
    (tmp_path / "d.jsonl").write_text(json.dumps(record) + "\n")
    assert all_records(prepared(tmp_path, tmp_path / "d.jsonl")) == [expected]


def test_truncate_pii_and_augment(tmp_path):
    lines = [
        {"text": f"mail me at user{i}@example.com or +1 555 123 4567 " + "word " * 30, "label": "x" if i % 2 else "y"}
        for i in range(40)
    ]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = prepare_dataset([tmp_path / "d.jsonl"], tmp_path / "o", DataConfig(**FORCE, redact_pii=True, augment=2))
    assert out["cleaning"]["emails_redacted"] == 40 and out["cleaning"]["phones_redacted"] == 40
    assert out["augmented"]["train_variants"] > 0
    assert out["splits"]["train"] == out["counts"]["kept"] - out["splits"]["validation"] - out["splits"]["test"]
    data = load_prepared(tmp_path / "o")
    assert len(data.train) == out["splits"]["train"] + out["augmented"]["train_variants"]
    assert "@" not in (tmp_path / "o" / "train.jsonl").read_text()
    with pytest.raises(DataError, match="too_long: 40"):
        prepare_dataset([tmp_path / "d.jsonl"], tmp_path / "t", DataConfig(**FORCE, max_tokens=10))
    cut = prepare_dataset(
        [tmp_path / "d.jsonl"], tmp_path / "t", DataConfig(**FORCE, max_tokens=10, overlong="truncate")
    )
    assert cut["length"]["truncated"] == 40 and cut["token_stats"]["max"] == 10
