"""`tunelab grade`: score predictions against their records with an OpenAI grader object.

`--json` prints one object on stdout (mean reward, its bootstrap interval, failures by kind, every
score); people get a short table on stderr.
"""

import json
from pathlib import Path
from typing import Annotated

import typer


def print_table(report) -> None:
    from rich.table import Table

    from tunelab.progress import console

    low, high = report.ci95()
    table = Table(title=f"{report.grader} ({report.type})")
    for column in ("samples", "mean reward", "95% interval", "failed"):
        table.add_column(column, justify="right")
    failed = ", ".join(f"{kind} {count}" for kind, count in sorted(report.errors.items())) or "none"
    table.add_row(str(report.n), f"{report.mean:.4f}", f"[{low:.4f}, {high:.4f}]", failed)
    console.print(table)
    for kind, detail in report.error_examples().items():
        console.print(f"  {kind}: {detail}")


def grade_command(
    grader: Annotated[Path, typer.Option("--grader", help="JSON file holding an OpenAI grader object.")],
    data: Annotated[Path, typer.Option("--data", help="The records graded against (JSONL: one item per line).")],
    predictions: Annotated[
        Path,
        typer.Option("--predictions", help="JSONL of outputs in the data's order: output_text, prediction or output."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="python graders: seconds each sample may run.")
    ] = 10.0,
) -> None:
    """Score every prediction; a sample whose grading fails scores 0 and is counted by kind of failure."""
    from tunelab.graders import SandboxLimits, load_grader, score_all
    from tunelab.graders.files import read_pairs

    loaded = load_grader(grader)
    outputs, items = read_pairs(data, predictions)
    loaded.set_sandbox_limits(SandboxLimits(timeout_s=timeout))
    try:
        report = score_all(loaded, outputs, items)
    finally:
        loaded.close()
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        print_table(report)


def register(app: typer.Typer) -> None:
    app.command("grade")(grade_command)
