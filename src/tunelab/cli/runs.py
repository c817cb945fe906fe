"""`tunelab runs list|show|compare|delete`: read the tracking store (MLflow), --json on each."""

import json

import typer

app = typer.Typer(no_args_is_help=True, help="List, show, compare and delete tracked runs.")

STORE = typer.Option(
    None, "--store", help="MLflow tracking URI (default MLFLOW_TRACKING_URI or sqlite in the tunelab home)."
)
JSON = typer.Option(False, "--json", help="Print one JSON object.")


def _emit(obj: dict) -> None:
    print(json.dumps(obj, default=str))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


@app.command("list")
def list_(
    tag: list[str] | None = typer.Option(None, "--tag", help="Only runs with this tag: key=value (repeatable)."),
    dataset_version: str | None = typer.Option(
        None, "--dataset-version", help="Only runs on this dataset version (prefix)."
    ),
    metric: list[str] | None = typer.Option(
        None, "--metric", help="Metric condition, e.g. 'tuned.rougeL>0.3' (repeatable)."
    ),
    experiment: str | None = typer.Option(None, "--experiment", help="Only this MLflow experiment."),
    limit: int = typer.Option(50, "--limit", help="At most this many runs, newest first."),
    store: str | None = STORE,
    as_json: bool = JSON,
) -> None:
    """Runs in the store, newest first, with their key metrics."""
    from tunelab.tracking import store as tracking_store

    client, uri = tracking_store.open_store(store)
    runs = tracking_store.list_runs(client, experiment, tag, dataset_version, metric, limit)
    if as_json:
        return _emit({"store": uri, "count": len(runs), "runs": runs})
    from rich.table import Table

    from tunelab.progress import console

    table = Table("run", "name", "status", "started", "method", "data", "metrics", title=f"{len(runs)} runs in {uri}")
    for run in runs:
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in run["metrics"].items())
        table.add_row(
            run["run_id"][:8],
            run["name"],
            run["status"],
            run["start_time"] or "",
            run["method"] or "",
            (run["dataset_version"] or "")[:8],
            shown,
        )
    console.print(table)


@app.command()
def show(
    run: str = typer.Argument(..., help="Run id (or unique prefix), run name or run folder."),
    store: str | None = STORE,
    as_json: bool = JSON,
) -> None:
    """Everything the store holds about one run: params, metrics, tags, artifacts."""
    from tunelab.tracking import store as tracking_store

    client, _ = tracking_store.open_store(store)
    found = tracking_store.show_run(client, run)
    if as_json:
        return _emit(found)
    from tunelab.progress import console

    console.print(f"[bold]{found['name']}[/] {found['run_id']} {found['status']} ({found['experiment']})")
    for section in ("tags", "params", "metrics"):
        console.print(f"[bold]{section}[/]")
        for key, value in sorted(found[section].items()):
            console.print(f"  {key}: {_fmt(value)}")
    console.print(f"[bold]artifacts[/] {found['artifact_uri']}: {', '.join(found['artifacts'])}")


@app.command()
def compare(
    runs: list[str] = typer.Argument(..., help="Two or more runs (id, prefix, name or folder)."),
    store: str | None = STORE,
    as_json: bool = JSON,
) -> None:
    """Params that differ and every metric, side by side."""
    from tunelab.tracking import store as tracking_store

    client, _ = tracking_store.open_store(store)
    found = tracking_store.compare_runs(client, runs)
    if as_json:
        return _emit(found)
    from rich.table import Table

    from tunelab.progress import console

    ids = found["run_ids"]
    table = Table("", *[run_id[:8] for run_id in ids], title="params that differ, then metrics")
    for key, values in found["params_differing"].items():
        table.add_row(key, *[_fmt(values[i]) for i in ids])
    table.add_section()
    for key, values in found["metrics"].items():
        table.add_row(key, *[_fmt(values[i]) for i in ids])
    console.print(table)


@app.command()
def delete(
    run: str = typer.Argument(..., help="Run id (or unique prefix), run name or run folder."),
    store: str | None = STORE,
    as_json: bool = JSON,
) -> None:
    """Mark a run deleted in the store (the run folder on disk is kept)."""
    from tunelab.tracking import store as tracking_store

    client, _ = tracking_store.open_store(store)
    result = tracking_store.delete_run(client, run)
    if as_json:
        return _emit(result)
    from tunelab.progress import say

    say(f"deleted run {result['deleted']} ({result['name']})")
