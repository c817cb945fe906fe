"""The `tunelab` command: a thin shell over jobs/ and the areas. Heavy imports stay lazy.

Every TunelabError (and any bad input it wraps) ends as one line on stderr and exit code 2.
"""

import os
import sys
import warnings

# Libraries' own progress bars and advisory warnings would drown tunelab's progress display.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"(peft|transformers|torch)\.")

import typer  # noqa: E402

from tunelab.cli import commands  # noqa: E402
from tunelab.errors import TunelabError  # noqa: E402
from tunelab.progress import console  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    help="tunelab: from raw domain data to an evaluated, versioned, served fine-tuned model.",
)
commands.register(app)


def main() -> None:
    """Typer's standalone mode answers usage errors (unknown option, bad value) with exit 2 itself."""
    try:
        app()
    except TunelabError as exc:
        console.print(
            f"[bold red]error:[/] {exc.message}" + (f"\n  [yellow]fix:[/] {exc.hint}" if exc.hint else ""),
            soft_wrap=True,
        )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("aborted")
        sys.exit(130)


if __name__ == "__main__":
    main()
