"""`tunelab data ...`: prepare, validate, stats and diff, thin shells over tunelab.data.

People read stderr; with --json, stdout carries exactly one JSON object for scripts.
"""

import json
import tempfile
from pathlib import Path
from typing import get_args

import typer

from tunelab.data.config import DataFormat
from tunelab.errors import ConfigError
from tunelab.progress import console, set_quiet

app = typer.Typer(no_args_is_help=True, help="Prepare, validate, inspect and compare datasets.")

INPUTS = typer.Argument(..., help="Data files (JSONL, JSON, CSV/TSV, Parquet) or Hugging Face dataset folders.")
FORMAT = typer.Option(
    "auto", "--format", help="One of: " + ", ".join(get_args(DataFormat)) + " (auto detects it per file)."
)
MAP = typer.Option(None, "--map", help="field=column, e.g. --map label=category (repeatable).")
JSON_OUT = typer.Option(False, "--json", help="Print one JSON object on stdout.")


def data_config(**options):
    """A DataConfig from CLI options, validated like the YAML config (errors name the key)."""
    from tunelab.config import validate_tree

    fields = {key: value for key, value in options.items() if value is not None}
    return validate_tree({"data": fields}, source="options").data


def parse_map(pairs: list[str] | None) -> dict[str, str]:
    mapping = {}
    for pair in pairs or []:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise ConfigError(f"--map {pair!r} is not field=column", "write e.g. --map label=category")
        mapping[field.strip()] = column.strip()
    return mapping


def parse_split(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--split {text!r} is not three numbers", "write e.g. --split 0.8,0.1,0.1") from None


def emit(result: dict, as_json: bool, lines: list[str]) -> None:
    """One JSON object on stdout for --json, else readable lines on stderr."""
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    for line in lines:
        console.print(line, soft_wrap=True, markup=False)


@app.command()
def prepare(
    inputs: list[Path] = INPUTS,
    out: Path = typer.Option(..., "--out", help="Output folder for the splits, rejects and manifest."),
    format: str = FORMAT,
    map: list[str] | None = MAP,
    split: str | None = typer.Option(None, "--split", help="Train,validation,test fractions, e.g. 0.8,0.1,0.1."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for splitting and augmentation."),
    near_dup_threshold: float | None = typer.Option(
        None, "--near-dup-threshold", help="Jaccard similarity of near duplicates."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model whose tokenizer counts tokens ('whitespace' for words)."
    ),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Token limit per example."),
    overlong: str | None = typer.Option(None, "--overlong", help="reject or truncate examples over --max-tokens."),
    min_tokens: int | None = typer.Option(None, "--min-tokens", help="Reject examples with fewer tokens."),
    redact_pii: bool = typer.Option(False, "--redact-pii", help="Replace e-mail addresses and phone numbers."),
    augment: int | None = typer.Option(None, "--augment", help="Label-preserving variants per train example."),
    unknown_keys: str | None = typer.Option(None, "--unknown-keys", help="reject or ignore records' unknown keys."),
    force: bool = typer.Option(False, "--force", help="Prepare even fewer than 100 usable examples."),
    as_json: bool = JSON_OUT,
):
    """Check, clean, deduplicate and split raw data into a versioned dataset folder."""
    from tunelab.data.prepare import prepare_dataset

    config = data_config(
        format=format,
        map=parse_map(map),
        split=parse_split(split),
        seed=seed,
        near_dup_threshold=near_dup_threshold,
        tokenizer=model,
        max_tokens=max_tokens,
        overlong=overlong,
        min_tokens=min_tokens,
        redact_pii=redact_pii or None,
        augment=augment,
        unknown_keys=unknown_keys,
        force=force or None,
        path=[str(p) for p in inputs],
    )
    if as_json:
        set_quiet(True)
    manifest = prepare_dataset(inputs, out, config)
    emit(manifest, as_json, summary_lines(manifest, out))


def summary_lines(manifest: dict, out: Path | None = None) -> list[str]:
    """The human summary of a manifest: counts, splits, reasons, guidance."""
    c, s = manifest["counts"], manifest["splits"]
    lines = [
        f"{c['input']} records: {c['kept']} kept, {c['rejected']} rejected, "
        f"{c['duplicates_exact']} exact and {c['duplicates_near']} near duplicates",
        f"splits: train {s['train']}, validation {s['validation']}, test {s['test']}  "
        f"({manifest['task']}, {manifest['schema']}, version {manifest['version'][:12]})",
    ]
    t = manifest["token_stats"]
    lines.append(
        f"tokens ({t['tokenizer']}): min {t['min']}, p50 {t['p50']}, p95 {t['p95']}, max {t['max']}, total {t['total']}"
    )
    for category, count in manifest["reject_reasons"].items():
        places = ", ".join(manifest.get("reject_examples", {}).get(category, []))
        lines.append(f"  rejected {category}: {count} (at {places}{', ...' if count > 5 else ''})")
    lines += [f"warning: {w}" for w in manifest["warnings"]]
    if out is not None:
        lines.append(f"wrote {out}/ (train, validation, test, rejects .jsonl, manifest.json)")
    return lines


@app.command()
def validate(
    inputs: list[Path] = INPUTS,
    format: str = FORMAT,
    map: list[str] | None = MAP,
    unknown_keys: str | None = typer.Option(None, "--unknown-keys", help="reject or ignore unknown keys."),
    as_json: bool = JSON_OUT,
):
    """Check files record by record and list the problems, without writing anything."""
    from tunelab.data.validate import validate_files
    from tunelab.errors import DataError

    report = validate_files(inputs, data_config(format=format, map=parse_map(map), unknown_keys=unknown_keys))
    lines = [f"{report['input']} records: {report['usable']} usable, {report['rejected']} rejected"]
    lines += [f"  {line}" for line in report["summary"]] + [f"warning: {w}" for w in report["warnings"]]
    emit(report, as_json, lines)
    if report["usable"] == 0:
        raise DataError(
            f"no usable record in {', '.join(p.name for p in inputs)}",
            "fix the records listed above or pass --format/--map",
        )


@app.command()
def stats(
    inputs: list[Path] = INPUTS,
    format: str = FORMAT,
    map: list[str] | None = MAP,
    model: str | None = typer.Option(None, "--model", help="Model whose tokenizer counts tokens."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Token limit per example."),
    force: bool = typer.Option(False, "--force", help="Report even on fewer than 100 usable examples."),
    as_json: bool = JSON_OUT,
):
    """Statistics and plain-words guidance for a prepared folder, or for raw files (prepared in a temp folder)."""
    from tunelab.data.prepare import is_prepared, load_prepared, prepare_dataset

    if len(inputs) == 1 and is_prepared(inputs[0]):
        manifest = load_prepared(inputs[0]).manifest
    else:
        config = data_config(
            format=format, map=parse_map(map), tokenizer=model, max_tokens=max_tokens, force=force or None
        )
        with tempfile.TemporaryDirectory(prefix="tunelab-stats-") as tmp:
            manifest = prepare_dataset(inputs, Path(tmp), config)
    lines = summary_lines(manifest)
    if manifest.get("class_weights"):
        lines.append(
            "class weights: " + ", ".join(f"{k}={v:.2f}" for k, v in list(manifest["class_weights"].items())[:10])
        )
    emit(manifest, as_json, lines)


@app.command()
def diff(
    dir_a: Path = typer.Argument(..., help="Prepared folder (older version)."),
    dir_b: Path = typer.Argument(..., help="Prepared folder (newer version)."),
    as_json: bool = JSON_OUT,
):
    """Records added, removed and changed between two prepared versions."""
    from tunelab.data.diff import diff_prepared

    result = diff_prepared(dir_a, dir_b)
    o = result["overall"]
    lines = [
        f"{result['version_a'][:12]} -> {result['version_b'][:12]}: {o['added']} added, {o['removed']} removed, "
        f"{o['changed']} changed, {o['unchanged']} unchanged"
    ]
    lines += [f"  {name}: +{d['added']} -{d['removed']} ~{d['changed']}" for name, d in result["splits"].items()]
    emit(result, as_json, lines)
