"""report.html: one self-contained page per run (inline CSS and PNG figures; opens offline).

Sections: summary, metrics base vs tuned with intervals, training curves, confusion matrix,
side-by-side samples (largest regressions, then largest wins), probes with verdicts, the cost
estimate beside the run's actual figures, data manifest, and the resolved config.
"""

import json
from pathlib import Path

import yaml

from tunelab.evaluation import figures
from tunelab.evaluation.html_parts import CSS, esc, fmt, table
from tunelab.evaluation.probes.report import probes_section
from tunelab.runs import MetricsLog, atomic_write_text, read_config


def read_inputs(run_dir: Path) -> tuple[dict, list[dict], dict, dict | None]:
    config_file, eval_file, manifest_file = (
        run_dir / "config.yaml",
        run_dir / "eval.json",
        run_dir / "data" / "manifest.json",
    )
    config = read_config(run_dir).model_dump(mode="json") if config_file.exists() else {}
    evaluation = json.loads(eval_file.read_text()) if eval_file.exists() else {}
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
    return config, MetricsLog(run_dir / "metrics.jsonl").read(), evaluation, manifest


def summary_section(run_dir: Path, config: dict, log: list[dict], evaluation: dict) -> str:
    model = config.get("model", {})
    facts = [
        ["run", run_dir.name],
        ["task", config.get("task") or evaluation.get("task", "?")],
        ["method", config.get("method", "?")],
        ["base model", model.get("name", "?") if isinstance(model, dict) else model],
        ["training steps", max((r.get("step", 0) for r in log), default=0)],
        ["evaluated on", f"{evaluation.get('n_examples', 0)} examples of the {evaluation.get('split', '?')} split"],
    ]
    primary = evaluation.get("primary_metric")
    headline = ""
    if primary and evaluation.get("tuned"):
        headline = f"<p><b>{esc(primary)}</b>: tuned {fmt(evaluation['tuned'][primary])}"
        if evaluation.get("base"):
            diff = evaluation["difference"][primary]
            word = "a significant" if diff["significant"] else "not a significant"
            headline += (
                f" vs base {fmt(evaluation['base'][primary])} (Δ {diff['delta']:+.4g}, 95% CI "
                f"[{diff['ci_low']:+.4g}, {diff['ci_high']:+.4g}]: {word} difference)"
            )
        headline += "</p>"
    return "<h2>Summary</h2>" + headline + table(["", ""], facts)


def metrics_section(evaluation: dict) -> str:
    if not evaluation.get("tuned"):
        return "<h2>Metrics</h2><p>No evaluation yet (eval.json missing).</p>"
    has_base = bool(evaluation.get("base"))
    headers = ["metric"] + (["base", "base 95% CI"] if has_base else []) + ["tuned", "tuned 95% CI"]
    headers += ["Δ tuned − base", "Δ 95% CI (paired)", "significant"] if has_base else []
    rows, classes = [], []
    for name, value in evaluation["tuned"].items():
        row = [name]
        if has_base:
            row += [evaluation["base"][name], _span(evaluation["intervals"]["base"][name])]
        row += [value, _span(evaluation["intervals"]["tuned"][name])]
        if has_base:
            diff = evaluation["difference"][name]
            better = (diff["delta"] < 0) == (name in evaluation.get("lower_is_better", []))
            row += [diff["delta"], _span([diff["ci_low"], diff["ci_high"]]), "yes" if diff["significant"] else "no"]
            classes.append(("win" if better else "regression") if diff["significant"] else "")
        rows.append(row)
    note = (
        "<p>BLEU and chrF on sacrebleu's 0–100 scale; other scores 0–1. Lower is better for: "
        f"{esc(', '.join(evaluation.get('lower_is_better', [])) or 'none')}.</p>"
    )
    bars = figures.metric_bars(evaluation) or ""
    return "<h2>Metrics: base vs tuned</h2>" + table(headers, rows, classes if has_base else None) + note + bars


def _span(pair) -> str:
    return f"[{pair[0]:.4g}, {pair[1]:.4g}]"


def curves_section(log: list[dict]) -> str:
    plots = [p for p in (figures.loss_curves(log), figures.learning_rate(log)) if p]
    return "<h2>Training curves</h2>" + ("".join(plots) or "<p>No training log (metrics.jsonl) in this folder.</p>")


def confusion_section(evaluation: dict) -> str:
    matrices = evaluation.get("confusion_matrix")
    if not matrices:
        return ""
    labels = evaluation["labels"]
    parts = [
        figures.confusion_heatmap(matrices[name], labels, f"Confusion matrix ({name})")
        for name in ("tuned", "base")
        if name in matrices
    ]
    per_class = evaluation.get("per_class", {}).get("tuned", {})
    rows = [[label, v["precision"], v["recall"], v["f1"], v["support"]] for label, v in per_class.items()]
    details = (
        f"<details><summary>Per-class precision, recall, F1 (tuned)</summary>"
        f"{table(['label', 'precision', 'recall', 'f1', 'support'], rows)}</details>"
    )
    return "<h2>Confusion matrix</h2>" + "".join(parts) + details


def samples_section(evaluation: dict) -> str:
    samples = evaluation.get("samples") or []
    if not samples:
        return ""
    has_base = "base" in samples[0]
    headers = ["", "input", "reference"] + (["base output"] if has_base else []) + ["tuned output"]
    headers += ["base score", "tuned score"] if has_base else ["score"]
    rows = [
        [s.get("kind", "")]
        + [s["input"][:600], s["reference"]]
        + ([s["base"]] if has_base else [])
        + [s["tuned"]]
        + ([s["base_score"], s["tuned_score"]] if has_base else [s["tuned_score"]])
        for s in samples
    ]
    classes = [s.get("kind", "") for s in samples]
    return (
        "<h2>Samples: largest regressions first, then largest wins</h2>"
        f"<p>Scored per example by {esc(evaluation.get('primary_metric', ''))} where it is per-example, else token F1.</p>"
        + table(headers, rows, classes)
    )


def manifest_section(manifest: dict | None) -> str:
    if not manifest:
        return "<h2>Data</h2><p>No data manifest in this run folder.</p>"
    rows = [
        [key, json.dumps(value) if isinstance(value, (dict, list)) else value]
        for key, value in manifest.items()
        if not isinstance(value, (dict, list)) or len(json.dumps(value)) < 300
    ]
    return "<h2>Data</h2>" + table(["field", "value"], rows)


def cost_section(cost: dict | None) -> str:
    """The planner's estimate beside what the run measured, so the next estimate can be trusted (or not)."""
    if not cost:
        return ""
    planned, actual = cost["estimate"], cost["actual"]
    hours = planned.get("hours") or {}
    rows = [
        ["train tokens", planned.get("train_tokens"), actual.get("train_tokens")],
        ["memory per device (GB)", planned.get("per_device_memory_gb"), actual.get("peak_memory_gb")],
        ["training hours", f"{hours.get('low', 0):.4g}–{hours.get('high', 0):.4g}", actual.get("hours")],
    ]
    note = (
        f"<p>Hardware planned for: {esc(planned.get('gpu') or '?')}. Measured memory: "
        f"{esc(actual.get('memory_measured_as') or 'peak memory')}.</p>"
    )
    return "<h2>Cost: estimate vs actual</h2>" + table(["", "estimate", "actual"], rows) + note


def config_section(config: dict) -> str:
    text = yaml.safe_dump(config, sort_keys=False) if config else "(no config.yaml)"
    return f"<h2>Config</h2><details><summary>Resolved config.yaml</summary><pre>{esc(text)}</pre></details>"


def render(run_dir: Path, config: dict, log: list[dict], evaluation: dict, manifest: dict | None) -> str:
    sections = [
        summary_section(run_dir, config, log, evaluation),
        metrics_section(evaluation),
        curves_section(log),
        confusion_section(evaluation),
        samples_section(evaluation),
        probes_section(evaluation.get("probes", {})),
        cost_section(evaluation.get("cost")),
        manifest_section(manifest),
        config_section(config),
    ]
    title = f"tunelab report: {esc(run_dir.name)}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{CSS}</style></head><body><h1>{title}</h1>{''.join(sections)}</body></html>\n"
    )


def write_report(run_dir: Path) -> Path:
    """Write run_dir/report.html from the run's config, training log, eval.json and data manifest."""
    run_dir = Path(run_dir)
    path = run_dir / "report.html"
    atomic_write_text(path, render(run_dir, *read_inputs(run_dir)))
    return path
