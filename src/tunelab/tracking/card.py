"""The model card: README.md in the run folder, in Hugging Face model-card format (YAML metadata)."""

from pathlib import Path

import yaml

from tunelab.runs import atomic_write_text


def _metric_rows(evaluation: dict) -> list[str]:
    base, tuned = evaluation.get("base") or {}, evaluation.get("tuned") or {}
    intervals = (evaluation.get("intervals") or {}).get("tuned", {})
    rows = ["| metric | base | tuned | tuned 95% CI |", "|---|---|---|---|"]
    for name, value in tuned.items():
        if isinstance(value, (int, float)):
            ci = intervals.get(name)
            ci_text = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if isinstance(ci, list) and len(ci) == 2 else ""
            base_value = base.get(name)
            rows.append(
                f"| {name} | {base_value:.4g} | {value:.4g} | {ci_text} |"
                if isinstance(base_value, (int, float))
                else f"| {name} | | {value:.4g} | {ci_text} |"
            )
    return rows


def _lineage_lines(run_dir: Path) -> list[str]:
    """Lineage recorded by the tracker (lineage.json), when there is one."""
    path = run_dir / "lineage.json"
    if not path.exists():
        return []
    import json

    found = json.loads(path.read_text(encoding="utf-8"))
    libraries = ", ".join(f"{k} {v}" for k, v in (found.get("libraries") or {}).items())
    return [
        "## Lineage",
        "",
        f"- base weights sha256: `{found.get('base_model_weights_sha256')}`",
        f"- git commit: `{found.get('git_commit')}`",
        f"- seed: {found.get('seed')}",
        f"- libraries: {libraries}",
        f"- hardware: {found.get('hardware')}",
        "",
    ]


def write_model_card(run_dir: Path, config, summary: dict, evaluation: dict, manifest: dict) -> None:
    from tunelab.methods.registry import method_for

    metadata = {
        "base_model": config.model.name,
        "library_name": "peft" if method_for(config).weights.library == "peft" else "transformers",
        "tags": ["tunelab", config.method, config.task],
        "license": "other",
        "datasets": [f"tunelab-dataset-{(manifest.get('version') or 'unknown')[:12]}"],
    }
    probes = evaluation.get("probes") or {}
    findings = [
        f"- **{name}**: {probe.get('verdict', '')}" for name, probe in probes.items() if isinstance(probe, dict)
    ]
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).strip(),
        "---",
        "",
        f"# {run_dir.name}",
        "",
        f"Fine-tuned from `{config.model.name}` with **{config.method}** for **{config.task}** by tunelab {summary['tunelab_version']}.",
        "",
        "## Training data",
        "",
        f"Dataset version `{manifest.get('version')}`; splits {manifest.get('splits')}.",
        "",
        "## Hyperparameters",
        "",
        "```yaml",
        yaml.safe_dump(config.train.model_dump(mode="json"), sort_keys=False).strip(),
        "```",
        "",
        "## Evaluation",
        "",
        f"Split `{evaluation.get('split')}`, {evaluation.get('n_examples')} examples, "
        f"primary metric `{evaluation.get('primary_metric')}`.",
        "",
        *_metric_rows(evaluation),
        "",
        "## Probes",
        "",
        *(findings or ["- not run"]),
        "",
        *_lineage_lines(run_dir),
        "## Intended use and limitations",
        "",
        "Intended for the task and data distribution it was tuned on. Check the probes above and your own "
        "held-out data before relying on it elsewhere; outputs can be wrong or biased.",
        "",
    ]
    atomic_write_text(run_dir / "README.md", "\n".join(lines))
