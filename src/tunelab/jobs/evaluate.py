"""The evaluation workflow: base vs tuned on held-out records, recorded in the run folder.

`tunelab eval` and the fine-tuning job both call `evaluate_and_record`, so an evaluation made
later from the CLI is recorded exactly as the one made at the end of training.
"""

from pathlib import Path

from tunelab.runs import read_json, write_json


def evaluate_and_record(
    tuned,
    base,
    records: list[dict],
    eval_config,
    split: str,
    folder: Path | None = None,
    cost: dict | None = None,
    manifest: dict | None = None,
) -> dict:
    """Evaluate `tuned` (and `base`, when given); with a folder, write eval.json, the dataset manifest
    (if the folder lacks one) and report.html. A re-evaluation keeps the cost its training measured."""
    from tunelab.evaluation.report import write_report
    from tunelab.evaluation.run import evaluate_run

    result = evaluate_run(tuned, base, records, tuned.task, eval_config, split=split)
    if folder is None:
        return result
    folder = Path(folder)
    kept_cost = cost or _training_cost(folder / "eval.json")
    if kept_cost:
        result["cost"] = kept_cost
    write_json(folder / "eval.json", result)
    if manifest and not (folder / "data" / "manifest.json").exists():
        write_json(folder / "data" / "manifest.json", manifest)
    result["report"] = str(write_report(folder))
    return result


def _training_cost(eval_file: Path) -> dict | None:
    return read_json(eval_file).get("cost") if eval_file.exists() else None


def held_out_records(data, eval_config) -> list[dict]:
    """The split a run is evaluated on (test by default, else validation), capped at eval.max_examples."""
    records = getattr(data, eval_config.split, None) or data.test or data.validation
    return records[: eval_config.max_examples] if eval_config.max_examples else records
