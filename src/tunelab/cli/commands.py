"""Registry of the CLI: modules that add top-level commands, and command groups.

Modules are imported here, not at the top of main.py, and each imports its heavy libraries
inside its commands, so `tunelab --help` stays instant.
"""

import importlib

import typer

TOP_LEVEL = [
    "train",
    "eval",
    "chat",
    "predict",
    "export",
    "serve",
    "sweep",
    "methods",
    "grade",
]  # each module exposes register(app)
SUBCOMMANDS = [
    ("runs", "runs", "List, show, compare and delete tracked runs (MLflow store)."),
    ("models", "models", "List bundled and cached models; recommend a base model."),
    ("data", "data", "Prepare, validate, inspect and compare datasets."),
    ("cost", "cost", "Estimate tokens, memory, time and money; compare total cost of ownership."),
]


def register(app: typer.Typer) -> None:
    for module_name in TOP_LEVEL:
        importlib.import_module(f"tunelab.cli.{module_name}").register(app)
    for name, module_name, help_text in SUBCOMMANDS:
        app.add_typer(importlib.import_module(f"tunelab.cli.{module_name}").app, name=name, help=help_text)
