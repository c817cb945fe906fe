"""`tunelab sweep CONFIG --space SPACE.yaml --trials N [--storage URL] [--jobs K]`: an Optuna study of runs."""

import json
from pathlib import Path

import typer


def sweep(
    config_file: Path | None = typer.Argument(None, help="YAML config every trial starts from (see `tunelab init`)."),
    space: Path | None = typer.Option(
        None, "--space", help="Search space YAML; default: learning rate, LoRA rank, epochs, warmup."
    ),
    trials: int = typer.Option(20, "--trials", help="Trials in the study in all (shared by every worker and machine)."),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna storage URL (sqlite/postgresql/mysql) to share a study; default sqlite in the study folder.",
    ),
    jobs: int = typer.Option(1, "--jobs", help="Worker processes on this machine."),
    study: str | None = typer.Option(None, "--study", help="Study name (default: the study folder's name)."),
    out: Path | None = typer.Option(None, "--out", help="Study folder; trials go in trial-NNN under it."),
    data: list[Path] | None = typer.Option(None, "--data", help="Raw data files or a prepared folder."),
    model: str | None = typer.Option(None, "--model", help="Bundled name, model folder or hub id."),
    method: str | None = typer.Option(None, "--method", help="Fine-tuning method."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Cap on optimizer steps per trial."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed."),
    sets: list[str] | None = typer.Option(None, "--set", help="Override any key: --set train.eval_steps=5."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the study's summary."),
) -> None:
    """Search hyperparameters with Optuna (TPE, median pruning on validation loss); every trial is a tracked run."""
    from tunelab.cli.train import overrides_from_flags
    from tunelab.config import load_config
    from tunelab.search.space import read_space
    from tunelab.search.sweep import run_sweep

    overrides = overrides_from_flags(data, model, None, method, None, None, max_steps, None, None, None, sets)
    config = load_config(config_file, overrides)
    result = run_sweep(
        config, read_space(space) if space else None, trials, storage, jobs, study, str(out) if out else None, seed
    )
    if as_json:
        print(json.dumps(result, default=str))
        return
    show(result)


def show(result: dict) -> None:
    from rich.table import Table

    from tunelab.progress import console

    keys = sorted({k for row in result["trials"] for k in row["params"]})
    table = Table("trial", "state", "val loss", "steps", *keys, title=f"study {result['study']}")
    for row in result["trials"]:
        value = f"{row['value']:.4f}" if row["value"] is not None else ""
        params = [
            f"{row['params'].get(k):.3g}" if isinstance(row["params"].get(k), float) else str(row["params"].get(k, ""))
            for k in keys
        ]
        table.add_row(str(row["number"]), row["state"], value, str(row["last_step"] or ""), *params)
    console.print(table)
    if result["importances"]:
        console.print("importances: " + ", ".join(f"{k} {v:.2f}" for k, v in result["importances"].items()))
    console.print(f"best config: {result['best_config']}\nreport: {result['report']}")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
