"""A job's data: its uploaded files prepared by the data pipeline into jobs/<id>/data.

Without a validation file a tenth of the training file is held out for validation loss; with
one, the training file is all train and the validation file all validation.
"""

import json
import shutil
from pathlib import Path

from tunelab.runs import read_json, write_json

HELD_OUT = (0.9, 0.1, 0.0)


def prepare_job_data(train_file: Path, validation_file: Path | None, folder: Path, seed: int, tokenizer: str) -> dict:
    """Prepare the job's splits into `folder` (manifest written last); DataError when unusable."""
    from tunelab.data.config import DataConfig
    from tunelab.data.prepare import prepare_dataset

    def options(split):
        return DataConfig(split=split, seed=seed, force=True, tokenizer=tokenizer)

    shutil.rmtree(folder, ignore_errors=True)
    if validation_file is None:
        return prepare_dataset([train_file], folder, options(HELD_OUT))
    train_part, validation_part = folder.with_name("prep-train"), folder.with_name("prep-validation")
    try:
        manifest = prepare_dataset([train_file], train_part, options((1.0, 0.0, 0.0)))
        held_out = prepare_dataset([validation_file], validation_part, options((0.0, 1.0, 0.0)))
        folder.mkdir(parents=True)
        shutil.copy(train_part / "train.jsonl", folder / "train.jsonl")
        shutil.copy(validation_part / "validation.jsonl", folder / "validation.jsonl")
        (folder / "test.jsonl").write_text("")
        manifest["splits"] = {
            "train": manifest["splits"]["train"],
            "validation": held_out["splits"]["validation"],
            "test": 0,
        }
        manifest["validation_file"] = held_out["files"]
        write_json(folder / "manifest.json", manifest)
        return manifest
    finally:
        shutil.rmtree(train_part, ignore_errors=True)
        shutil.rmtree(validation_part, ignore_errors=True)


def keep_validation(folder: Path, count: int | None) -> None:
    """Hold the validation split to its first `count` records (a reinforcement job's eval_samples)."""
    manifest = read_json(folder / "manifest.json")
    if count is None or manifest["splits"]["validation"] <= count:
        return
    lines = (folder / "validation.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "validation.jsonl").write_text("".join(lines[:count]), encoding="utf-8")
    manifest["splits"]["validation"] = count
    write_json(folder / "manifest.json", manifest)


def train_size(folder: Path) -> int:
    return int(read_json(folder / "manifest.json")["splits"]["train"])


def read_metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl as written so far (a line being written is skipped)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def results_csv(records: list[dict], accuracy: dict) -> str:
    """The per-step result file, in OpenAI's column names; the final row carries token accuracies."""
    columns = [
        "step",
        "train_loss",
        "train_mean_token_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
        "learning_rate",
        "tokens_per_second",
    ]
    lines = [",".join(columns)]
    for i, r in enumerate(records):
        last = i == len(records) - 1
        row = [
            r.get("step"),
            r.get("loss"),
            accuracy.get("train") if last else r.get("mean_token_accuracy"),
            r.get("eval_loss"),
            accuracy.get("validation") if last else r.get("eval_mean_token_accuracy"),
            r.get("learning_rate"),
            r.get("tokens_per_second"),
        ]
        lines.append(",".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row))
    return "\n".join(lines) + "\n"
