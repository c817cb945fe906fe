"""Cost planner against reality, on the bundled SmolLM2 (slow): exact token counts of a prepared
real data set, and memory within 25% of the peak RSS increase of a real `tunelab train`.
The calibrated time against the run's measured time is a benchmark figure (benchmarks/cost_accuracy.py,
BENCHMARKS.md), not an assertion: timing never decides a test."""

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
    subprocess.run([str(TUNELAB), "data", "prepare", str(source), "--out", str(out), "--json"], check=True, capture_output=True, timeout=900)
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
        direct += len(tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"])
    assert estimate(None, "lora", data=gigaword, epochs=1, gpu="cpu")["train_tokens"] == direct


@pytest.mark.slow
def test_memory_estimate_matches_a_real_cpu_run(gigaword):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cost_accuracy.py"), str(gigaword), "--methods", "lora", "full",
                             "--steps", "3"], capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stderr[-2000:]
    for run in json.loads(result.stdout.strip().splitlines()[-1])["runs"]:
        assert 0.75 <= run["memory_ratio"] <= 1.25, run
