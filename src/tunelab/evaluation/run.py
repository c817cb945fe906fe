"""evaluate_run: the tuned model (and the base model) on a split, with intervals, samples and probes.

The returned dict is what a run folder's eval.json holds; report.html is written from it.
"""

from tunelab.errors import ConfigError
from tunelab.evaluation import bootstrap
from tunelab.evaluation.metrics import (
    LOWER_IS_BETTER,
    Metric,
    classification_metrics,
    confusion_matrix,
    generation_metrics,
    language_model_metrics,
    mean_metric,
    per_class_report,
    references_are_json,
)
from tunelab.evaluation.predict import (
    classify,
    family,
    generate_outputs,
    label_names,
    language_model_stats,
    reference,
    source_text,
)
from tunelab.evaluation.preference import implicit_reward, pair_logps, preference_metrics
from tunelab.evaluation.probes.run import run_probes


def evaluate_run(tuned, base, records: list[dict], task: str, config, split: str = "test") -> dict:
    """Metrics with 95% bootstrap intervals for each model, paired intervals for tuned − base, samples, probes."""
    records = records[: config.max_examples] if config.max_examples else list(records)
    kind = family(records)
    models = {"tuned": tuned} if base is None or not config.baseline else {"base": base, "tuned": tuned}
    outputs = {name: model_outputs(loaded, records, kind, config, name) for name, loaded in models.items()}
    labels = class_labels(tuned, records) if kind == "classification" else None
    metrics = {
        name: select(all_metrics(kind, records, outputs[name], labels, loaded, task, config), config.metrics)
        for name, loaded in models.items()
    }
    weights = bootstrap.resample_weights(len(records), config.bootstrap_samples, config.seed)
    result = {
        "split": split,
        "task": task,
        "family": kind,
        "n_examples": len(records),
        "primary_metric": primary_metric(kind, records, list(metrics["tuned"])),
        "lower_is_better": sorted(LOWER_IS_BETTER & set(metrics["tuned"])),
        "bootstrap_samples": config.bootstrap_samples,
        "confidence": 0.95,
        "normalisation": list(config.normalisation),
        "base": None,
        "tuned": None,
        "intervals": {},
        "difference": {},
    }
    for name, named in metrics.items():
        result[name] = {m: metric.value() for m, metric in named.items()}
        result["intervals"][name] = {m: bootstrap.metric_interval(metric, weights) for m, metric in named.items()}
    if "base" in metrics:
        result["difference"] = {
            m: bootstrap.paired_difference(metrics["base"][m], metric, weights)
            for m, metric in metrics["tuned"].items()
        }
    if kind == "classification":
        result.update(classification_details(records, outputs, labels))
    if kind == "preference" and "base" in outputs:
        result["preference"] = implicit_reward(outputs["tuned"], outputs["base"], weights)
    result["predictions"] = prediction_rows(records, outputs, kind)
    result["samples"] = side_by_side(
        result["predictions"], per_sample_scores(metrics, result["primary_metric"]), config.samples_shown
    )
    result["probes"] = run_probes(models, records, kind, outputs, config) if config.probes else {}
    return result


def model_outputs(loaded, records: list[dict], kind: str, config, name: str):
    """Label names, generated texts, pairs' log-probabilities, or (language modelling) per-example loss statistics."""
    if kind == "preference":
        return pair_logps(loaded, records, config.batch_size, description=f"Scoring pairs ({name})")
    if kind == "classification":
        return classify(loaded, [r["text"] for r in records], config.batch_size, description=f"Classifying ({name})")
    if kind in ("generation", "reinforcement"):
        return generate_outputs(
            loaded,
            records,
            max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size,
            description=f"Generating ({name})",
            temperature=config.temperature,
            top_p=config.top_p,
            stop=config.stop or None,
        )
    return language_model_stats(
        loaded.model, loaded.tokenizer, records, loaded.task, config.batch_size, description=f"Scoring ({name})"
    )


def class_labels(tuned, records: list[dict]) -> list[str]:
    labels = list(label_names(tuned.model).values())
    return labels + sorted({str(r["label"]) for r in records} - set(labels))


def all_metrics(kind: str, records: list[dict], outputs, labels, loaded, task: str, config) -> dict[str, Metric]:
    references = [reference(r) for r in records]
    if kind == "classification":
        found = classification_metrics(outputs, references, labels)
    elif kind == "generation":
        found = generation_metrics(outputs, references, config.normalisation)
        stats = language_model_stats(loaded.model, loaded.tokenizer, records, loaded.task, config.batch_size)
        found += language_model_metrics(*stats)[:2]  # eval_loss and perplexity on the references
    elif kind == "preference":
        found = preference_metrics(outputs)
    elif kind == "reinforcement":
        found = []
        if config.grader is None:
            raise ConfigError("reinforcement data is scored by a grader", "pass --grader grader.json (eval.grader)")
    else:
        found = language_model_metrics(*outputs)
    if config.grader is not None and kind in ("generation", "reinforcement"):
        found.append(grader_metric(config.grader, records, outputs))
    return {metric.name: metric for metric in found}


def grader_metric(grader_source, records: list[dict], outputs: list[str]) -> Metric:
    """The grader's mean reward over the outputs (each sample's score, so it bootstraps like any metric)."""
    from tunelab.graders.registry import load_grader
    from tunelab.graders.report import score_all

    grader = load_grader(grader_source)
    try:
        return mean_metric("mean_reward", score_all(grader, outputs, records).scores)
    finally:
        grader.close()


def select(metrics: dict[str, Metric], wanted: list[str] | None) -> dict[str, Metric]:
    if not wanted:
        return metrics
    unknown = [name for name in wanted if name not in metrics]
    if unknown:
        raise ConfigError(
            f"eval.metrics: {', '.join(unknown)} not computed for this task", f"choose among {', '.join(metrics)}"
        )
    return {name: metrics[name] for name in wanted}


def primary_metric(kind: str, records: list[dict], available: list[str]) -> str:
    if kind == "classification":
        preferred = "accuracy"
    elif kind == "language-modelling":
        preferred = "perplexity"
    elif kind == "preference":
        preferred = "preference_accuracy"
    elif kind == "reinforcement":
        preferred = "mean_reward"
    else:
        preferred = "exact_match" if references_are_json([reference(r) for r in records]) else "rougeL"
    return preferred if preferred in available else available[0]


def classification_details(records: list[dict], outputs: dict, labels: list[str]) -> dict:
    references = [reference(r) for r in records]
    seen = [label for label in labels if label in set(references) | {p for out in outputs.values() for p in out}]
    return {
        "labels": seen,
        "confusion_matrix": {name: confusion_matrix(out, references, seen) for name, out in outputs.items()},
        "per_class": {name: per_class_report(out, references, labels) for name, out in outputs.items()},
    }


def prediction_rows(records: list[dict], outputs: dict, kind: str) -> list[dict]:
    rows = []
    for index, record in enumerate(records):
        row = {"index": index, "input": source_text(record), "reference": reference(record)}
        for name, out in outputs.items():
            if kind == "language-modelling":
                row[name] = f"loss {out[0][index] / max(out[1][index], 1):.3f}"
            elif kind == "preference":
                row[name] = f"log p chosen {out[index][0]:.2f}, rejected {out[index][1]:.2f}"
            else:
                row[name] = out[index]
        rows.append(row)
    return rows


def per_sample_scores(metrics: dict, primary: str) -> dict[str, list[float]]:
    """Each model's per-example score on a higher-is-better scale, for ranking wins and regressions."""
    scores = {}
    for name, named in metrics.items():
        metric = named.get(primary)
        if metric is None or not metric.per_example:
            metric = named.get("token_f1") or named.get("accuracy")
        if metric is None:  # language modelling: per-example mean loss, negated
            stats = named["eval_loss"].stats
            scores[name] = [-(row[0] / row[1]) if row[1] else 0.0 for row in stats]
        else:
            scores[name] = [row[0] / row[1] if row[1] else 0.0 for row in metric.stats]
    return scores


def side_by_side(rows: list[dict], scores: dict[str, list[float]], shown: int) -> list[dict]:
    """Largest regressions first, then largest wins (tuned minus base per-sample score)."""
    if "base" not in scores:
        return [{**row, "tuned_score": s} for row, s in list(zip(rows, scores["tuned"]))[:shown]]
    scored = [
        {**row, "base_score": b, "tuned_score": t, "change": t - b}
        for row, b, t in zip(rows, scores["base"], scores["tuned"])
    ]
    regressions = sorted((r for r in scored if r["change"] < 0), key=lambda r: r["change"])[:shown]
    wins = sorted((r for r in scored if r["change"] > 0), key=lambda r: -r["change"])[:shown]
    ties = [r for r in scored if r["change"] == 0][: max(0, shown - len(regressions) - len(wins))]
    for label, group in (("regression", regressions), ("win", wins), ("same", ties)):
        for row in group:
            row["kind"] = label
    return regressions + wins + ties
