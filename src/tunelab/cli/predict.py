"""`tunelab predict`: batched predictions for every record of a data file, in order."""

from pathlib import Path
from typing import Annotated

import typer


def predict_command(
    target: Annotated[str, typer.Argument(help="Run folder, model folder or bundled model name.")],
    input_path: Annotated[Path, typer.Option("--input", help="Records to predict (JSONL, JSON, CSV, TSV, Parquet).")],
    output_path: Annotated[Path, typer.Option("--output", help="JSONL written with one line per input record.")],
    batch_size: Annotated[int, typer.Option("--batch-size", help="Records per forward pass.")] = 16,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Longest generated answer, in tokens.")] = 128,
    temperature: Annotated[float, typer.Option("--temperature", help="0 for greedy decoding.")] = 0.0,
) -> None:
    """Predict every record of a file; a bad record gets an error line instead of stopping the run."""
    from tunelab.inference.predict import predict_file
    from tunelab.progress import say

    summary = predict_file(
        target, input_path, output_path, batch_size=batch_size, max_new_tokens=max_new_tokens, temperature=temperature
    )
    failed = f', {summary.errors} with errors (see their "error" field)' if summary.errors else ""
    say(f"wrote {summary.records} predictions to {summary.output}{failed}")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
