"""`tunelab predict`: one output line per input line, in order, with bad records marked instead of fatal."""

import json

import pytest
from test_export_fixtures import full_run, lora_run  # noqa: F401

from tunelab.errors import DataError
from tunelab.inference import predict as predict_module
from tunelab.inference.predict import model_input, predict_file

BAD_LINES = {17: "{not json", 88: '{"messages": 7}', 150: json.dumps({"no_prompt_here": 1})}


def _chat_lines(count: int) -> list[str]:
    lines = [json.dumps({"messages": [{"role": "user", "content": f"code {i}"}]}) for i in range(count)]
    for index, bad in BAD_LINES.items():
        if index < count:
            lines[index] = bad
    return lines


def _read(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_200_lines_with_3_malformed_keep_order_and_mark_errors(lora_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(_chat_lines(200)) + "\n")
    summary = predict_file(str(lora_run), source, tmp_path / "out.jsonl", batch_size=32, max_new_tokens=3)
    rows = _read(tmp_path / "out.jsonl")
    assert len(rows) == 200 and summary.records == 200 and summary.errors == 3
    assert [row["line"] for row in rows] == list(range(1, 201))
    assert sorted(i for i, row in enumerate(rows) if "error" in row) == sorted(BAD_LINES)
    for i, row in enumerate(rows):
        if i not in BAD_LINES:
            assert row["input"]["messages"][0]["content"] == f"code {i}" and isinstance(row["prediction"], str)


def test_predictions_do_not_depend_on_batch_size(full_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(_chat_lines(12)[:-1] + [json.dumps({"prompt": "a much longer prompt " * 5})]) + "\n")
    predict_file(str(full_run), source, tmp_path / "one.jsonl", batch_size=1, max_new_tokens=4)
    predict_file(str(full_run), source, tmp_path / "five.jsonl", batch_size=5, max_new_tokens=4)
    assert _read(tmp_path / "one.jsonl") == _read(tmp_path / "five.jsonl")


def test_csv_input_and_a_failing_batch_cost_only_the_bad_record(full_run, tmp_path, monkeypatch):
    source = tmp_path / "in.csv"
    source.write_text("prompt\nfirst\nboom\nthird\n")
    real = predict_module.run_batch

    def flaky(loaded, prompts, **options):
        if any("boom" in p for p in prompts):
            raise RuntimeError("device lost")
        return real(loaded, prompts, **options)

    monkeypatch.setattr(predict_module, "run_batch", flaky)
    summary = predict_file(str(full_run), source, tmp_path / "out.jsonl", batch_size=8, max_new_tokens=2)
    rows = _read(tmp_path / "out.jsonl")
    assert [("error" in row) for row in rows] == [False, True, False] and summary.errors == 1
    assert "device lost" in rows[1]["error"] and rows[0]["input"] == {"prompt": "first"}


def test_record_shapes_become_prompts():
    from tiny_models import smollm2_tokenizer_dir
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    chat = model_input(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "old"}]},
        "causal-lm",
        tokenizer,
    )
    assert chat.endswith("<|im_start|>assistant\n") and "old" not in chat
    assert "say hi\n\nplease" in model_input({"instruction": "say hi", "input": "please"}, "causal-lm", tokenizer)
    assert "hello" in model_input({"conversations": [{"from": "human", "value": "hello"}]}, "causal-lm", tokenizer)
    assert model_input({"text": "classify me"}, "classification", tokenizer) == "classify me"
    assert model_input({"source": "translate"}, "seq2seq", tokenizer) == "translate"
    for bad in ([1, 2], {"messages": [{"role": "robot", "content": "x"}]}, {"prompt": ""}, {"other": 1}):
        with pytest.raises(ValueError):
            model_input(bad, "causal-lm", tokenizer)


def test_missing_input_fails_before_loading(tmp_path):
    with pytest.raises(DataError, match="input not found"):
        predict_file("/nowhere/run", tmp_path / "absent.jsonl", tmp_path / "out.jsonl")
