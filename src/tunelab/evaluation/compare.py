"""Compare finished runs: their differing config keys, their metrics, and each run's difference from the
first run with a bootstrap interval (paired when both runs scored the same examples in the same order).

Intervals are recomputed from the predictions saved in each eval.json, so no model is loaded.
"""

from pathlib import Path

from tunelab.errors import TunelabError
from tunelab.evaluation import bootstrap
from tunelab.evaluation.metrics import Metric, classification_metrics, generation_metrics
from tunelab.runs import read_config, read_json


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update(flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return flat


def load_run(run_dir: Path) -> tuple[dict, dict]:
    run_dir = Path(run_dir)
    if not (run_dir / "eval.json").exists():
        raise TunelabError(f"{run_dir} has no eval.json", f"evaluate it first: tunelab eval {run_dir} --data DATA")
    config_file = run_dir / "config.yaml"
    config = flatten(read_config(run_dir).model_dump(mode="json")) if config_file.exists() else {}
    return config, read_json(run_dir / "eval.json")


def recomputed(evaluation: dict) -> dict[str, Metric]:
    """The tuned model's metrics rebuilt from its saved predictions (empty for language modelling)."""
    rows = evaluation.get("predictions") or []
    outputs, references = [r["tuned"] for r in rows], [r["reference"] for r in rows]
    if evaluation.get("family") == "classification":
        found = classification_metrics(outputs, references, sorted(set(outputs) | set(references)))
    elif evaluation.get("family") == "generation":
        found = generation_metrics(
            outputs, references, evaluation.get("normalisation", ["strip", "lower", "whitespace"])
        )
    else:
        found = []
    return {metric.name: metric for metric in found}


def same_examples(a: dict, b: dict) -> bool:
    key = [(r["input"], r["reference"]) for r in a.get("predictions") or []]
    return bool(key) and key == [(r["input"], r["reference"]) for r in b.get("predictions") or []]


def difference(first: Metric, other: Metric, paired: bool, samples: int, seed: int) -> dict:
    if paired:
        return {
            **bootstrap.paired_difference(first, other, bootstrap.resample_weights(len(first.stats), samples, seed)),
            "paired": True,
        }
    a = bootstrap.replicate(first, bootstrap.resample_weights(len(first.stats), samples, seed))
    b = bootstrap.replicate(other, bootstrap.resample_weights(len(other.stats), samples, seed + 1))
    low, high = bootstrap.interval(b - a)
    return {
        "delta": other.value() - first.value(),
        "ci_low": low,
        "ci_high": high,
        "significant": bool(low > 0 or high < 0),
        "paired": False,
    }


def compare_runs(run_dirs: list[Path], samples: int = 1000, seed: int = 0) -> dict:
    if len(run_dirs) < 2:
        raise TunelabError("compare needs at least two run folders", "tunelab compare RUN_A RUN_B [...]")
    loaded = [load_run(d) for d in run_dirs]
    configs, evaluations = [c for c, _ in loaded], [e for _, e in loaded]
    keys = sorted({k for c in configs for k in c})
    differing = {k: [c.get(k) for c in configs] for k in keys if len({repr(c.get(k)) for c in configs}) > 1}
    names = [m for m in (evaluations[0].get("tuned") or {}) if all(m in (e.get("tuned") or {}) for e in evaluations)]
    result = {
        "runs": [str(d) for d in run_dirs],
        "config_differences": differing,
        "primary_metric": evaluations[0].get("primary_metric"),
        "metrics": {m: [e["tuned"][m] for e in evaluations] for m in names},
        "intervals": {m: [e["intervals"]["tuned"][m] for e in evaluations] for m in names},
        "differences": [],
    }
    first = recomputed(evaluations[0])
    for run_dir, evaluation in zip(run_dirs[1:], evaluations[1:]):
        other, paired = recomputed(evaluation), same_examples(evaluations[0], evaluation)
        row = {"run": str(run_dir), "versus": str(run_dirs[0])}
        for m in names:
            if m in first and m in other:
                row[m] = difference(first[m], other[m], paired, samples, seed)
            else:  # scored by the model itself (eval loss): no saved per-example values
                row[m] = {
                    "delta": evaluation["tuned"][m] - evaluations[0]["tuned"][m],
                    "ci_low": None,
                    "ci_high": None,
                    "significant": None,
                    "paired": False,
                }
        result["differences"].append(row)
    return result
