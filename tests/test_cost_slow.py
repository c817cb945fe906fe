"""Cost planner against reality, on the bundled SmolLM2 (slow): exact token counts of a prepared
real data set, and the memory estimate against the training memory a real run measured (weights +
exact peak RSS rise, tunelab/training/memory.py). The calibrated time estimate against a real run is
a benchmark figure (benchmarks/cost_accuracy.py, BENCHMARKS.md): timing never decides a test."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TUNELAB = Path(sys.executable).parent / "tunelab"


@pytest.fixture(scope="module")
def gigaword(tmp_path_factory):
    source = ROOT.parent / "shared" / "data" / "t0" / "gigaword_TLDR.jsonl"
    if not source.is_file():
        pytest.skip("the T0 gigaword sample is only present in the project's workspace and CI")
    out = tmp_path_factory.mktemp("giga") / "prepared"
    subprocess.run(
        [str(TUNELAB), "data", "prepare", str(source), "--out", str(out), "--json"],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return out


@pytest.mark.slow
def test_token_count_equals_direct_count_with_the_bundled_tokenizer(gigaword):
    from transformers import AutoTokenizer

    from tunelab.cost.estimate import estimate
    from tunelab.models.bundled import resolve_bundled

    tokenizer = AutoTokenizer.from_pretrained(resolve_bundled("smollm2"))
    direct = 0
    for line in (gigaword / "train.jsonl").read_text().splitlines():
        messages = json.loads(line)["messages"]
        direct += len(
            tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
        )
    assert estimate(None, "lora", data=gigaword, epochs=1, gpu="cpu")["train_tokens"] == direct


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "full"])
def test_memory_estimate_within_25_percent_of_a_real_runs_training_memory(gigaword, method, tmp_path):
    run = tmp_path / "run"
    subprocess.run(
        [
            str(TUNELAB),
            "train",
            "--data",
            str(gigaword),
            "--method",
            method,
            "--max-steps",
            "3",
            "--out",
            str(run),
            "--set",
            "eval.enabled=false",
            "--json",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    cost = json.loads((run / "eval.json").read_text())["cost"]
    assert cost["actual"]["memory_measured_as"].endswith("(VmHWM)")
    ratio = cost["estimate"]["per_device_memory_gb"] / cost["actual"]["peak_memory_gb"]
    assert 0.75 <= ratio <= 1.25, cost
