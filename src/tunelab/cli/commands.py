"""Registry of the CLI's command groups: one module per area, each exposing `app` or commands."""

import typer


def register(app: typer.Typer) -> None:
    from tunelab.cli import train as train_cli

    train_cli.register(app)
    from tunelab.cli import eval as eval_cli; eval_cli.register(app)  # noqa: E702
    for name, module_name, help_text in SUBCOMMANDS:
        module = __import__(f"tunelab.cli.{module_name}", fromlist=["app"])
        app.add_typer(module.app, name=name, help=help_text)


SUBCOMMANDS = [
    ("models", "models", "List bundled and cached models; recommend a base model."),
    ("data", "data", "Prepare, validate, inspect and compare datasets."),
]
