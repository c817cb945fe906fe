"""`tunelab methods`: the method table as a user sees it (what each trains, its default rate, what it needs)."""

import json

import typer

from tunelab.methods.registry import METHODS


def methods_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """List the fine-tuning methods: what trains, default learning rate, whether it merges, what it needs."""
    rows = [
        {
            "method": m.name,
            "summary": m.summary,
            "learning_rate": m.learning_rate,
            "trains_base": m.trains_base,
            "saved_as": f"{m.weights.folder}/ ({m.weights.library})",
            "mergeable": m.mergeable,
            "needs": (["cuda"] if m.needs_cuda else []) + list(m.needs_packages),
            "settings": list(m.settings),
        }
        for m in METHODS.values()
    ]
    if as_json:
        print(json.dumps({"methods": rows}))
        return
    from rich.table import Table

    from tunelab.progress import console

    table = Table(title="fine-tuning methods (--method NAME)")
    for column in ("method", "what trains", "default lr", "saved as", "merges", "needs"):
        table.add_column(column)
    for row in rows:
        merges = "-" if row["trains_base"] else "yes" if row["mergeable"] else "no"
        table.add_row(
            row["method"],
            row["summary"],
            f"{row['learning_rate']:g}",
            row["saved_as"],
            merges,
            ", ".join(row["needs"]) or "-",
        )
    console.print(table)


def register(root: typer.Typer) -> None:
    root.command("methods")(methods_command)
