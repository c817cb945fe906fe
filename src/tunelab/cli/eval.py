"""`tunelab eval` and `tunelab compare`: evaluate a run, model folder or model name on data; compare runs.

`--json` prints one object on stdout; people get a table on stderr.
"""

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="Evaluate models and compare runs.")


def load_records(data: Path, split: str | None) -> tuple[list[dict], str, dict | None]:
    """Records of `split` from a prepared folder, or every record of a raw file (prepared on the fly)."""
    from tunelab.data.config import DataConfig
    from tunelab.data.prepare import is_prepared, load_prepared, prepare_dataset
    from tunelab.errors import DataError

    if not data.exists():
        raise DataError(f"data not found: {data}", "pass a prepared folder or a data file with --data")
    if is_prepared(data):
        prepared = load_prepared(data)
    else:
        with tempfile.TemporaryDirectory() as folder:
            prepare_dataset([data], Path(folder), DataConfig(dedup=False, force=True))
            prepared = load_prepared(Path(folder))
        split = split or "all"
    split = split or "test"
    if split == "all":
        return prepared.train + prepared.validation + prepared.test, split, prepared.manifest
    if split not in ("train", "validation", "test"):
        raise DataError(f"unknown split {split!r}", "use train, validation, test or all")
    return getattr(prepared, split), split, prepared.manifest


def load_models(target: str, baseline: str | None, no_baseline: bool, device: str):
    from tunelab.inference.engine import load_target

    tuned = load_target(target, device)
    if no_baseline:
        return tuned, None
    base_name = baseline or (tuned.base_name if tuned.base_name != tuned.name else None)
    return tuned, load_target(base_name, device, tuned.task) if base_name else None


def eval_command(
    target: Annotated[str, typer.Argument(help="Run folder, model folder or model name.")],
    data: Annotated[Path, typer.Option("--data", help="Prepared data folder, or a raw data file (all its records).")],
    split: Annotated[
        str | None, typer.Option("--split", help="train, validation, test or all (default: test; all for a raw file).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Base model or run to compare with (default: a run's base model).")
    ] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Evaluate the target alone.")] = False,
    metrics: Annotated[
        list[str] | None, typer.Option("--metrics", help="Metrics to report (repeat or comma-separate).")
    ] = None,
    max_examples: Annotated[
        int | None, typer.Option("--max-examples", help="Evaluate only the first N examples.")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Generation length.")] = 64,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per batch.")] = 16,
    probes: Annotated[
        bool, typer.Option("--probes/--no-probes", help="Run the bias, hallucination and forgetting probes.")
    ] = True,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for eval.json and report.html (default: the run folder).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    grader: Annotated[
        Path | None, typer.Option("--grader", help="Grader JSON whose mean reward (with its interval) is added.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Evaluate TARGET on --data with 95% bootstrap intervals, base vs tuned, and probes."""
    from tunelab.evaluation.config import EvalConfig
    from tunelab.jobs.evaluate import evaluate_and_record

    wanted = [m.strip() for item in metrics or [] for m in item.split(",") if m.strip()] or None
    config = EvalConfig(
        max_examples=max_examples,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        probes=probes,
        metrics=wanted,
        baseline=not no_baseline,
        grader=str(grader) if grader else None,
    )
    records, split_name, manifest = load_records(data, split)
    tuned, base = load_models(target, baseline, no_baseline, device)
    folder = out or (Path(target) if (Path(target) / "config.yaml").exists() else None)
    result = evaluate_and_record(tuned, base, records, config, split_name, folder, manifest=manifest)
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, default=str))
    else:
        show_evaluation(result)


def show_evaluation(result: dict) -> None:
    from rich.table import Table

    from tunelab.progress import console

    has_base = bool(result.get("base"))
    table = Table(
        title=f"{result['split']} split, {result['n_examples']} examples (primary: {result['primary_metric']})"
    )
    for column in (
        ["metric"] + (["base"] if has_base else []) + ["tuned", "95% CI"] + (["Δ [95% CI]", "sig."] if has_base else [])
    ):
        table.add_column(column)
    for name, value in result["tuned"].items():
        low, high = result["intervals"]["tuned"][name]
        row = (
            [name]
            + ([f"{result['base'][name]:.4g}"] if has_base else [])
            + [f"{value:.4g}", f"[{low:.4g}, {high:.4g}]"]
        )
        if has_base:
            d = result["difference"][name]
            row += [f"{d['delta']:+.4g} [{d['ci_low']:+.4g}, {d['ci_high']:+.4g}]", "yes" if d["significant"] else "no"]
        table.add_row(*row)
    console.print(table)
    for probe, found in (result.get("probes") or {}).items():
        console.print(f"[bold]{probe}[/]: {found.get('verdict', '')}")
    if result.get("report"):
        console.print(f"report: {result['report']}")


def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders; differences are against the first.")],
    samples: Annotated[int, typer.Option("--bootstrap-samples", help="Bootstrap resamples.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """One table of the runs' differing config keys and metrics, with the differences' 95% intervals."""
    from tunelab.evaluation.compare import compare_runs

    result = compare_runs(runs, samples)
    if as_json:
        print(json.dumps(result, default=str))
    else:
        show_comparison(result)


def show_comparison(result: dict) -> None:
    from rich.table import Table

    from tunelab.progress import console

    names = [Path(r).name for r in result["runs"]]
    table = Table(title=f"runs compared (differences vs {names[0]}; primary: {result['primary_metric']})")
    table.add_column("")
    for name in names:
        table.add_column(name)
    for key, values in result["config_differences"].items():
        table.add_row(key, *[str(v) for v in values])
    for metric, values in result["metrics"].items():
        cells = [f"{values[0]:.4g}"]
        for value, diff in zip(values[1:], result["differences"]):
            d = diff[metric]
            ci = (
                f" [{d['ci_low']:+.3g}, {d['ci_high']:+.3g}]{' *' if d['significant'] else ''}"
                if d["ci_low"] is not None
                else ""
            )
            cells.append(f"{value:.4g} (Δ {d['delta']:+.3g}{ci})")
        table.add_row(metric, *cells)
    console.print(table)
    console.print("* the 95% interval of the difference excludes zero")


def register(root: typer.Typer) -> None:
    root.command("eval")(eval_command)
    root.command("compare")(compare_command)


register(app)
