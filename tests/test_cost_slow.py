"""Cost planner against reality, on the bundled SmolLM2 (slow): exact token counts of a prepared
real data set. Memory and calibrated time against a real run are benchmark figures
(benchmarks/cost_accuracy.py, BENCHMARKS.md): peak RSS on a shared CPU moved the memory ratio
between 0.80 and 1.32 from run to run, too unstable to decide a test."""

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
