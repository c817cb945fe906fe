"""LoRA on the bundled SmolLM2 learns T0's gigaword headlines: held-out ROUGE-L above the untouched
base model's (slow). The full-size run is benchmarks/quality_real_data.py; this is one epoch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUNELAB = str(Path(sys.executable).with_name("tunelab"))


@pytest.mark.slow
def test_lora_beats_the_base_model_on_held_out_rouge_l(shared_data, tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [
            TUNELAB,
            "train",
            "--data",
            str(shared_data / "t0" / "gigaword_TLDR.jsonl"),
            "--method",
            "lora",
            "--epochs",
            "1",
            "--out",
            str(run),
            "--set",
            "data.split=[0.6,0.1,0.3]",
            "--set",
            "eval.probes=false",
            "--set",
            "eval.max_examples=24",
            "--set",
            "eval.max_new_tokens=24",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "TUNELAB_QUIET": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout.strip().splitlines()[-1])["metrics"]
    assert metrics["tuned"]["rougeL"] > metrics["base"]["rougeL"], metrics
