"""Registry of the CLI's command groups: one module per area, each exposing `app` or commands."""

import typer


def register(app: typer.Typer) -> None:
    from tunelab.cli import train as train_cli

    train_cli.register(app)
    from tunelab.cli import eval as eval_cli; eval_cli.register(app)  # noqa: E702
    from tunelab.cli import chat as chat_cli; chat_cli.register(app)  # noqa: E702
    from tunelab.cli import predict as predict_cli; predict_cli.register(app)  # noqa: E702
    from tunelab.cli import export as export_cli; export_cli.register(app)  # noqa: E702
    for name, module_name, help_text in SUBCOMMANDS:
        module = __import__(f"tunelab.cli.{module_name}", fromlist=["app"])
        app.add_typer(module.app, name=name, help=help_text)


SUBCOMMANDS = [
    ("models", "models", "List bundled and cached models; recommend a base model."),
    ("data", "data", "Prepare, validate, inspect and compare datasets."),
    ("cost", "cost", "Estimate tokens, memory, time and money; compare total cost of ownership."),
]
