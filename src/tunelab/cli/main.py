"""The `tunelab` command: a thin shell over jobs/ and the areas. Heavy imports stay lazy.

Every TunelabError (and any bad input it wraps) ends as one line on stderr and exit code 2.
"""

import sys

import typer

from tunelab.cli import commands
from tunelab.errors import TunelabError
from tunelab.progress import console

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="tunelab: from raw domain data to an evaluated, versioned, served fine-tuned model.")
commands.register(app)


def main() -> None:
    try:
        app(standalone_mode=False)
    except TunelabError as exc:
        console.print(f"[bold red]error:[/] {exc.message}" + (f"\n  [yellow]fix:[/] {exc.hint}" if exc.hint else ""),
                      soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
