"""report.html: self-contained, with plots and the base vs tuned table; rendered by headless Chromium (slow)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.evaluation.report import write_report
from tunelab.runs import write_json

ROOT = Path(__file__).resolve().parents[1]


def fake_evaluation(classification: bool) -> dict:
    names = ["accuracy", "macro_f1"] if classification else ["rougeL", "bleu", "eval_loss"]
    values = {"base": {n: 0.3 for n in names}, "tuned": {n: 0.6 for n in names}}
    result = {
        "split": "test",
        "task": "classification" if classification else "causal-lm",
        "n_examples": 40,
        "primary_metric": names[0],
        "lower_is_better": [] if classification else ["eval_loss"],
        **values,
        "intervals": {m: {n: [v - 0.1, v + 0.1] for n, v in values[m].items()} for m in values},
        "difference": {n: {"delta": 0.3, "ci_low": 0.1, "ci_high": 0.5, "significant": True} for n in names},
        "samples": [
            {
                "kind": "regression",
                "input": "in <b>1</b>",
                "reference": "r",
                "base": "good",
                "tuned": "bad",
                "base_score": 1.0,
                "tuned_score": 0.0,
                "change": -1.0,
            },
            {
                "kind": "win",
                "input": "in 2",
                "reference": "r",
                "base": "bad",
                "tuned": "good",
                "base_score": 0.0,
                "tuned_score": 1.0,
                "change": 1.0,
            },
        ],
        "probes": {
            "bias": {"pairs": 2, "base": {"change_rate": 0.5}, "tuned": {"change_rate": 0.0}, "verdict": "fine"},
            "hallucination": {"verdict": "not run"},
            "forgetting": {
                "base_perplexity": 20.0,
                "tuned_perplexity": 30.0,
                "flagged": True,
                "verdict": "likely catastrophic forgetting",
            },
        },
    }
    if classification:
        result.update(
            labels=["a", "b"],
            confusion_matrix={"base": [[3, 1], [2, 4]], "tuned": [[4, 0], [1, 5]]},
            per_class={"tuned": {"a": {"precision": 0.8, "recall": 1.0, "f1": 0.9, "support": 4}}},
        )
    return result


def make_run(folder: Path, classification: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text("task: causal-lm\nmethod: lora\nmodel:\n  name: smollm2\n")
    rows = [
        {
            "step": s,
            "epoch": s / 10,
            "loss": 2.0 - s / 10,
            "learning_rate": 1e-4 * min(1, s / 3),
            "tokens_per_second": 50.0,
            **({"eval_loss": 2.1 - s / 10} if s % 5 == 0 else {}),
        }
        for s in range(1, 11)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_json(folder / "eval.json", fake_evaluation(classification))
    write_json(
        folder / "data" / "manifest.json", {"task": "chat", "sizes": {"train": 80, "test": 40}, "version": "abc"}
    )
    return folder


def test_report_is_self_contained_with_figures_and_comparison(tmp_path):
    html = write_report(make_run(tmp_path / "run")).read_text()
    assert len(re.findall(r"<img|<svg", html)) >= 3  # loss, learning rate, metric bars
    assert "base" in html.lower() and "tuned" in html.lower()
    assert not re.search(r"""(src|href)=["']https?:""", html), "report must open offline"
    assert "likely catastrophic forgetting" in html and "in &lt;b&gt;1&lt;/b&gt;" in html
    assert html.index("regression") < html.index(">win<")


def test_classification_report_has_a_confusion_heatmap(tmp_path):
    html = write_report(make_run(tmp_path / "run", classification=True)).read_text()
    assert 'alt="Confusion matrix (tuned)"' in html


def test_report_without_training_log_or_eval(tmp_path):
    html = write_report(tmp_path).read_text()
    assert "No training log" in html and "eval.json missing" in html


@pytest.mark.slow
def test_chromium_renders_plots_and_tables(tmp_path):
    if not shutil.which("chromium"):
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    run = make_run(tmp_path / "run", classification=True)
    write_report(run)
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_report.py"), str(run), "--out", str(shot)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and result["variance"] > 100 and result["colours"] > 50
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    top = image.crop((0, 0, image.width, 1500))
    assert len(top.getcolors(1 << 20) or []) > 50, "the first screen shows no plot"
