"""On BANKING77, the accuracy in eval.json and report.html equals scikit-learn's on the saved predictions (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"


@pytest.mark.slow
def test_banking77_report_accuracy_equals_scikit_learn(tmp_path):
    if not (DATA / "train.csv").exists():
        pytest.skip(f"BANKING77 not found at {DATA} (the shared data folder is absent in a fresh clone)")
    from sklearn.metrics import accuracy_score

    run = tmp_path / "run"
    env = {**os.environ, "TUNELAB_HOME": str(tmp_path / "home"), "TUNELAB_QUIET": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunelab.cli.main",
            "train",
            "--data",
            str(DATA / "train.csv"),
            "--task",
            "classification",
            "--max-steps",
            "30",
            "--out",
            str(run),
            "--set",
            "eval.max_examples=400",
            "--set",
            "eval.probes=false",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        env=env,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    evaluation = json.loads((run / "eval.json").read_text())
    rows = evaluation["predictions"]
    expected = accuracy_score([r["reference"] for r in rows], [r["tuned"] for r in rows])
    assert evaluation["tuned"]["accuracy"] == pytest.approx(expected, abs=1e-12)
    html = (run / "report.html").read_text()
    assert f'<td class="num">{expected:.4g}</td>' in html
