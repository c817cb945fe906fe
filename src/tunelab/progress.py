"""Progress display shared by every long step: rich progress bars on stderr, silent when asked.

Output for machines (`--json`) goes to stdout; everything for people goes to stderr, so that a
script can read stdout while a person still sees progress.
"""

import contextlib
import os
import sys

from rich.console import Console

console = Console(stderr=True, highlight=False)
_quiet = os.environ.get("TUNELAB_QUIET") == "1"


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def say(message: str) -> None:
    if not _quiet:
        console.print(message)


@contextlib.contextmanager
def status(message: str):
    if _quiet or not sys.stderr.isatty():
        say(message)
        yield
        return
    with console.status(message):
        yield


def track(iterable, description: str, total: int | None = None):
    """Iterate with a progress bar (count, rate, ETA) on stderr."""
    if _quiet:
        yield from iterable
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total if total is not None else _len(iterable))
        for item in iterable:
            yield item
            progress.advance(task)


def _len(iterable):
    try:
        return len(iterable)
    except TypeError:
        return None
