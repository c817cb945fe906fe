"""`tunelab models list|recommend`: what is on disk, and which base model suits a task here."""

import json

import typer

app = typer.Typer(no_args_is_help=True, help="List bundled and cached models; recommend a base model.")


def local_models(include_catalogue: bool = False) -> list[dict]:
    """Bundled models (their catalogue entry until converted), converted/cached folders, optionally the catalogue."""
    from tunelab import paths
    from tunelab.models.bundled import BUNDLED
    from tunelab.models.catalogue import catalogue, lookup, spec_from_folder

    rows, seen = [], set()
    for name in BUNDLED:
        converted = paths.model_cache() / name
        spec = spec_from_folder(converted) if (converted / "config.json").is_file() else lookup(name)
        entry = lookup(name)
        rows.append(
            _row(name, spec, "bundled" + (" (converted)" if (converted / "config.json").is_file() else ""), entry)
        )
        seen.add(name)
    for folder in sorted(paths.model_cache().iterdir()):
        if folder.name not in seen and (folder / "config.json").is_file():
            rows.append(_row(folder.name, spec_from_folder(folder), "cached", None))
    if include_catalogue:
        rows += [_row(hub_id, spec, "catalogue", spec) for hub_id, spec in catalogue().items() if not spec.bundled]
    return rows


def _row(name: str, spec, where: str, entry) -> dict:
    facts = entry or spec
    return {
        "name": name,
        "where": where,
        "params": int(spec.params),
        "architecture": spec.architecture,
        "family": facts.family,
        "license": facts.license,
        "context": spec.context,
        "path": spec.local_path,
    }


@app.command("list")
def list_command(
    include_catalogue: bool = typer.Option(False, "--catalogue", help="Also list every catalogued hub model."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Bundled and cached models with parameters, architecture, license and context length."""
    rows = local_models(include_catalogue)
    if as_json:
        print(json.dumps({"models": rows}))
        return
    from rich.table import Table

    from tunelab.progress import console

    table = Table(title="Models")
    for column in ("name", "where", "params", "architecture", "license", "context"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["where"], _human(row["params"]), row["architecture"], row["license"], f"{row['context']:,}"
        )
    console.print(table)


def _human(params: float) -> str:
    return f"{params / 1e9:.2f}B" if params >= 1e9 else f"{params / 1e6:.0f}M"


@app.command("recommend")
def recommend_command(
    task: str | None = typer.Option(
        None, "--task", help="causal-lm, chat, code, classification, seq2seq, summarization, translation."
    ),
    from_openai: str | None = typer.Option(
        None,
        "--from-openai",
        help="An OpenAI fine-tunable model (gpt-4o-mini, gpt-4.1, o4-mini, a dated snapshot or an ft: id): "
        "the open models that replace it, instead of --task.",
    ),
    gpu: str | None = typer.Option(
        None, "--gpu", help="GPU name (see `tunelab cost estimate --help`); default: this machine."
    ),
    license: str = typer.Option("any", "--license", help="permissive or any."),
    max_params: str | None = typer.Option(None, "--max-params", help="Largest model, e.g. 3B or 500M."),
    top: int = typer.Option(10, "--top", help="Rows to show."),
    prices: str | None = typer.Option(None, "--prices", help="YAML file overriding prices and GPU figures."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Rank catalogued base models for a task on your hardware, or replace an OpenAI model; each row says why."""
    from tunelab.cost.recommend import parse_params, recommend

    result = recommend(task, gpu, license, parse_params(max_params), prices, top, from_openai=from_openai)
    if as_json:
        print(json.dumps(result))
        return
    show_recommendations(result)


def show_recommendations(result: dict) -> None:
    from rich.table import Table

    from tunelab.progress import console

    moving = result.get("from_openai")
    title = f"Open models for OpenAI {moving['class']}" if moving else f"Base models for {result['task']}"
    table = Table(title=f"{title} on {result['gpu']}")
    for column in ("#", "model", "params", "full", "lora", "qlora", "tok/s", "why"):
        table.add_column(column)
    for rank, row in enumerate(result["models"], 1):
        v = row["verdicts"]
        table.add_row(
            str(rank),
            row["model"],
            _human(row["params"]),
            v["full"],
            v["lora"],
            v["qlora"],
            f"{row['inference_tokens_per_second']:,.0f}",
            row["why"],
        )
    console.print(table)
    if moving:
        show_migration(result)
    if result["api_models"]:
        api = Table(title=f"OpenAI fine-tunable models (USD per 1M tokens, prices as of {result['prices_as_of']})")
        for column in ("model", "training", "input", "output", "closes to new jobs", "base shuts down"):
            api.add_column(column)
        for row in result["api_models"]:
            api.add_row(
                row["model"],
                f"{row['training_per_1m']:g}",
                f"{row['input_per_1m']:g}",
                f"{row['output_per_1m']:g}",
                row["closed_to_new_jobs"],
                row["base_shutdown"] or "-",
            )
        console.print(api)


def show_migration(result: dict) -> None:
    """Why this class maps to these models, how to train the recommended one, and OpenAI's dates with the source."""
    from tunelab.progress import console

    moving = result["from_openai"]
    console.print(f"[bold]{moving['class']}[/]: {moving['why']}")
    console.print(
        f"recommended: [bold]{moving['recommended']}[/] "
        f"(tunelab train --model {moving['recommended']} --method {moving['method']} --data FILE.jsonl)"
    )
    if moving["base_shutdown"]:
        shutdown = moving["base_shutdown"]
        console.print(f"{shutdown['model']} base snapshot shutdown: {shutdown['shutdown']} ({shutdown['source']})")
    console.print(f"[yellow]{result['openai_fine_tuning']['summary']}[/]")
