"""The main job end to end at reduced size with the real bundled SmolLM2: the tuned model must beat
the untouched base model on the task's primary metric."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_job_beats_the_base_model(tmp_path):
    tunelab = str(Path(sys.executable).with_name("tunelab"))
    out = tmp_path / "run"
    result = subprocess.run(
        [
            tunelab,
            "train",
            "--out",
            str(out),
            "--json",
            "--set",
            "data.demo_size=120",
            "--max-steps",
            "14",
            "--set",
            "eval.probes=false",
            "--set",
            "tracking.enabled=false",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evaluation = json.loads((out / "eval.json").read_text())
    metric = evaluation["primary_metric"]
    assert metric == "exact_match"
    assert evaluation["tuned"][metric] > evaluation["base"][metric], (evaluation["base"], evaluation["tuned"])
    assert evaluation["tuned"]["json_valid"] >= evaluation["base"]["json_valid"]
