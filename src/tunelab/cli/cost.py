"""`tunelab cost estimate|tco`: tables for people on stderr, one JSON object on stdout with --json."""

import json
from datetime import datetime
from pathlib import Path

import typer

from tunelab.methods.registry import known_methods

app = typer.Typer(
    no_args_is_help=True, help="Estimate tokens, memory, time and money; compare total cost of ownership."
)


def _settings(config_file, model, method, data, epochs, batch_size, seq_len, checkpointing) -> dict:
    """Flat estimate arguments: defaults < YAML config < flags."""
    from tunelab.config import load_config
    from tunelab.cost.estimate import settings_from_config

    config = load_config(
        config_file,
        {"model.name": model, "method": method, "train.epochs": epochs, "train.micro_batch_size": batch_size},
    )
    settings = settings_from_config(config)
    settings.update(seq_len=seq_len, gradient_checkpointing=checkpointing or settings["gradient_checkpointing"])
    if data:
        settings["data"] = data
    return settings


@app.command("estimate")
def estimate_command(
    config_file: Path | None = typer.Argument(None, help="YAML run config (model, method, data, train settings)."),
    model: str | None = typer.Option(
        None, "--model", help="Catalogued hub id, bundled name, model folder or OpenAI model."
    ),
    method: str | None = typer.Option(
        None, "--method", help=f"One of: {known_methods()} (`tunelab methods` describes them)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Prepared data folder (train.jsonl); default: 1,000 x 512 tokens assumed."
    ),
    epochs: float | None = typer.Option(None, "--epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Examples per forward pass (micro-batch)."),
    seq_len: int | None = typer.Option(None, "--seq-len", help="Tokens per example row; default: the longest example."),
    gradient_checkpointing: bool = typer.Option(
        False, "--gradient-checkpointing", help="Assume activations are recomputed."
    ),
    gpu: str | None = typer.Option(
        None,
        "--gpu",
        help="GPU name (H100-80GB, A100-80GB, A100-40GB, L4, A10G, T4, RTX4090, CPU); default: this machine.",
    ),
    gpus: int = typer.Option(1, "--gpus", help="Number of GPUs (states sharded with FSDP/ZeRO-3)."),
    calibrate: bool = typer.Option(
        False, "--calibrate", help="Time a few training steps of the model's shape here to measure FLOP/s."
    ),
    prices: Path | None = typer.Option(None, "--prices", help="YAML file overriding prices and GPU figures."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Tokens, memory per device with a verdict per GPU, GPU-hours and cost of a fine-tuning run."""
    from tunelab.cost.estimate import estimate

    settings = _settings(config_file, model, method, data, epochs, batch_size, seq_len, gradient_checkpointing)
    result = estimate(gpu=gpu, gpus=gpus, calibrate=calibrate, prices_file=prices, **settings)
    if as_json:
        print(json.dumps(result))
    else:
        show_estimate(result)


def show_estimate(result: dict) -> None:
    from rich.table import Table

    from tunelab.progress import console

    console.print(
        f"[bold]{result['model']}[/] · {result['method']} · {result.get('gpu', 'OpenAI')}"
        f"{' x ' + str(result['gpus']) if result.get('gpus', 1) > 1 else ''}"
    )
    console.print(
        f"train tokens: {result['train_tokens']:,} ({result['examples']:,} examples x {result['epochs']:g} epochs, "
        f"{result['token_count']})"
    )
    console.print(
        f"memory per device: {result['per_device_memory_gb']} GB -> [bold]{result['verdict']}[/]"
        + (f"; fix: {result['fix']}" if result["fix"] else "")
    )
    hours = result["gpu_hours"]
    console.print(
        f"GPU-hours: {hours['low']:.3g}-{hours['high']:.3g}; cost: ${result['cost_usd']['low']:,.2f}-${result['cost_usd']['high']:,.2f}"
    )
    if result.get("verdicts"):
        table = Table(title="Memory verdict per GPU")
        for column in ("GPU", "memory GB", "with checkpointing", "verdict", "cheapest change"):
            table.add_column(column)
        for v in result["verdicts"]:
            table.add_row(v["gpu"], f"{v['memory_gb']:g}", f"{v['checkpointed_memory_gb']:g}", v["verdict"], v["fix"])
        console.print(table)
    for line in result["assumptions"]:
        console.print(f"[dim]- {line}[/]")


@app.command("tco")
def tco_command(
    requests_per_day: float = typer.Option(..., "--requests-per-day", help="Requests served per day."),
    tokens_per_request: float = typer.Option(..., "--tokens-per-request", help="Input + output tokens per request."),
    months: int = typer.Option(..., "--months", help="Horizon in months."),
    output_share: float = typer.Option(0.25, "--output-share", help="Share of each request's tokens that are output."),
    openai_model: str = typer.Option("gpt-4.1-mini", "--openai-model", help="OpenAI model for option (a)."),
    model: str = typer.Option("meta-llama/Meta-Llama-3-8B", "--model", help="Open model for option (b)."),
    small_model: str = typer.Option(
        "Qwen/Qwen2.5-1.5B-Instruct", "--small-model", help="Smaller model for option (c)."
    ),
    method: str = typer.Option("lora", "--method", help="Fine-tuning method for the open models."),
    train_tokens: float | None = typer.Option(
        None, "--train-tokens", help="Training tokens (all epochs); default 1.5M."
    ),
    rate: float | None = typer.Option(None, "--rate", help="Maintenance rate, USD per hour."),
    maintenance_hours: float | None = typer.Option(None, "--maintenance-hours", help="Maintenance hours per month."),
    start: datetime | None = typer.Option(
        None,
        "--start",
        formats=["%Y-%m-%d"],
        help="First day of the horizon, YYYY-MM-DD (default today): OpenAI fine-tuning closes to new jobs on a date.",
    ),
    plot: Path | None = typer.Option(Path("tco.png"), "--plot", help="Where to write the cumulative-cost plot."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Skip the plot."),
    prices: Path | None = typer.Option(None, "--prices", help="YAML file overriding prices and GPU figures."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Compare the OpenAI API, a self-hosted open model and a smaller model over M months."""
    from tunelab.cost.tco import plot_cumulative, tco

    result = tco(
        requests_per_day,
        tokens_per_request,
        months,
        output_share,
        openai_model,
        model,
        method,
        small_model,
        train_tokens,
        rate,
        maintenance_hours,
        prices,
        start=start.date() if start else None,
    )
    if plot and not no_plot:
        plot_cumulative(result, plot)
        result["plot"] = str(plot)
    if as_json:
        print(json.dumps(result))
    else:
        show_tco(result)


def show_tco(result: dict) -> None:
    from rich.table import Table

    from tunelab.progress import console

    months = result["months"]
    table = Table(
        title=f"Total cost of ownership over {months} months, {result['start']} to {result['end']} "
        f"({result['requests_per_day']:g} requests/day x {result['tokens_per_request']:g} tokens)"
    )
    for column in ("option", "upfront $", "monthly $", f"{months}-month total $", "break-even vs API", "how"):
        table.add_column(column)
    for option in result["options"]:
        month = option["break_even_month_vs_api"]
        table.add_row(
            option["name"] + ("" if option["available"] else " [bold red](unavailable)[/]"),
            f"{option['upfront']:,.2f}",
            f"{option['monthly']:,.2f}",
            f"{option[f'total_{months}_months']:,.2f}",
            "-"
            if month is None and option is result["options"][0]
            else ("never" if month is None else f"month {month}"),
            option["detail"],
        )
    console.print(table)
    excluded = result["excluded_from_cheapest"]
    console.print(
        f"cheapest over {months} months: [bold]{result['cheapest']}[/]"
        + (f" (not counting {', '.join(excluded)}: unavailable over this horizon)" if excluded else "")
    )
    show_openai_availability(result)
    if result.get("plot"):
        console.print(f"plot: {result['plot']}")
    for line in result["assumptions"]:
        console.print(f"[dim]- {line}[/]")


def show_openai_availability(result: dict) -> None:
    """Why an option is unavailable, the wind-down dates with their source, and the base shutdown's source."""
    from tunelab.progress import console

    for option in result["options"]:
        if not option["available"]:
            console.print(f"[yellow]{option['name']} is unavailable:[/] {'; '.join(option['unavailable_because'])}")
    fine_tuning = result["openai_fine_tuning"]
    console.print(f"[yellow]{fine_tuning['summary']}[/]")
    shutdown = fine_tuning["base_shutdown"]
    if shutdown:
        console.print(
            f"{shutdown['model']} base snapshot shutdown: {shutdown['shutdown']} (source: {shutdown['source']})"
        )
