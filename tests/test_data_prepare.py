"""prepare_dataset end to end on small hand-made files and on the real data sets."""

import json

import pytest

from tunelab.data.config import DataConfig
from tunelab.data.prepare import class_weights, is_prepared, load_prepared, prepare_dataset
from tunelab.errors import DataError

FAST = {"tokenizer": "whitespace"}


def chat_lines(n: int, start: int = 0) -> list[str]:
    return [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"question number {i} about topic {i * 7 % 13} please"},
                    {"role": "assistant", "content": f"answer {i} is {i * i} because of reason {i % 5}"},
                ]
            }
        )
        for i in range(start, start + n)
    ]


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_chat_counts_reconcile_and_outputs_are_deterministic(tmp_path):
    src = write(tmp_path / "chat.jsonl", chat_lines(200) + chat_lines(5) + ["not json", ""])
    manifest = prepare_dataset([src], tmp_path / "a", DataConfig(**FAST))
    again = prepare_dataset([src], tmp_path / "b", DataConfig(**FAST))
    c = manifest["counts"]
    assert c == {"input": 207, "kept": 200, "rejected": 2, "duplicates_exact": 5, "duplicates_near": 0}
    assert manifest["splits"] == {"train": 160, "validation": 20, "test": 20}
    assert manifest["sha256"] == again["sha256"] and manifest["version"] == again["version"]
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    assert manifest["leakage"]["cross_split_near_duplicates"] == 0
    assert is_prepared(tmp_path / "a")
    loaded = load_prepared(tmp_path / "a")
    assert loaded.task == "causal-lm" and len(loaded.train) == 160
    assert loaded.train[0]["messages"][1]["role"] == "assistant"


def test_too_few_examples_refused_unless_forced(tmp_path):
    src = write(tmp_path / "small.jsonl", chat_lines(30))
    with pytest.raises(DataError, match="--force|fewer than 100"):
        prepare_dataset([src], tmp_path / "out", DataConfig(**FAST))
    manifest = prepare_dataset([src], tmp_path / "out", DataConfig(force=True, **FAST))
    assert manifest["counts"]["kept"] == 30
    assert any("overfitting" in w or "rarely" in w for w in manifest["warnings"])


def test_class_weights_inverse_frequency_mean_one():
    weights = class_weights([{"label": "a"}] * 3 + [{"label": "b"}])
    assert weights["b"] == pytest.approx(3 * weights["a"])
    assert sum(weights.values()) / 2 == pytest.approx(1.0)


def test_banking77_stratified_split(shared_data, tmp_path):
    manifest = prepare_dataset([shared_data / "banking77" / "test.csv"], tmp_path / "out", DataConfig(**FAST))
    assert manifest["task"] == "classification" and manifest["schema"] == "classification"
    dist = manifest["label_distribution"]
    assert len(dist["train"]) == 77 and len(dist["test"]) == 77
    c = manifest["counts"]
    assert c["input"] == c["kept"] + c["rejected"] + c["duplicates_exact"] + c["duplicates_near"]


def test_t0_special_tokens_stripped(shared_data, tmp_path):
    prepare_dataset([shared_data / "t0" / "ag_news_classify.jsonl"], tmp_path / "out", DataConfig(**FAST))
    text = "".join((tmp_path / "out" / f"{s}.jsonl").read_text() for s in ("train", "validation", "test"))
    assert "<|endoftext|>" not in text
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["cleaning"]["special_tokens_stripped"] > 0


def test_a_file_without_usable_records_among_several_is_refused(tmp_path):
    good = write(tmp_path / "good.jsonl", chat_lines(150))
    bad = write(tmp_path / "bad.jsonl", ["nope", "{]"])
    with pytest.raises(DataError, match="bad.jsonl"):
        prepare_dataset([good, bad], tmp_path / "out", DataConfig(**FAST))


def test_near_duplicates_dropped_and_never_leak_across_splits(tmp_path):
    import random

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(vocab) for _ in range(60)) for _ in range(200)]
    copies = [t.rsplit(" ", 1)[0] + " changed" for t in texts[:20]]
    lines = [json.dumps({"text": t}) for t in texts + copies]
    manifest = prepare_dataset([write(tmp_path / "t.jsonl", lines)], tmp_path / "out", DataConfig(**FAST))
    assert manifest["counts"]["duplicates_near"] == 20 and manifest["counts"]["kept"] == 200
    assert manifest["leakage"]["cross_split_near_duplicates"] == 0
    near = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert all(r["category"] == "duplicate_near" and r["duplicate_of"].endswith(f":{r['line'] - 200}") for r in near)


def test_dedup_off_keeps_exact_and_near_copies(tmp_path):
    near = [json.loads(line) for line in chat_lines(20)]
    for record in near:
        record["messages"][1]["content"] += " indeed"
    lines = chat_lines(100) + chat_lines(10) + [json.dumps(r) for r in near] + ["not json"]
    manifest = prepare_dataset([write(tmp_path / "d.jsonl", lines)], tmp_path / "out", DataConfig(dedup=False, **FAST))
    assert manifest["counts"] == {"input": 131, "kept": 130, "rejected": 1, "duplicates_exact": 0, "duplicates_near": 0}
    assert sum(manifest["splits"].values()) == 130
