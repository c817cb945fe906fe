"""`tunelab chat`: an interactive terminal chat with streamed replies; `--compare` shows base beside tuned.

The prompt is plain `input()` so the session can be driven from scripts and pseudo-terminals.
"""

from typing import Annotated

import typer

COMMANDS_HELP = "commands: /reset clears the conversation, /exit quits"


def chat_command(
    target: Annotated[str, typer.Argument(help="Run folder, model folder or bundled model name.")],
    system: Annotated[
        str | None, typer.Option("--system", help="System message that opens every conversation.")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature; 0 for greedy.")] = 0.7,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Longest reply, in tokens.")] = 256,
    compare: Annotated[
        str | None, typer.Option("--compare", help="A base model (name or folder) to answer beside TARGET.")
    ] = None,
) -> None:
    """Chat with a model in the terminal."""
    from tunelab.inference.chat import ChatSession
    from tunelab.inference.engine import load_target
    from tunelab.progress import status

    options = {"system": system, "temperature": temperature, "max_new_tokens": max_new_tokens}
    with status(f"Loading {target}"):
        tuned = ChatSession(load_target(target), **options)
    base = None
    if compare:
        with status(f"Loading {compare}"):
            base = ChatSession(load_target(compare), **options)
    out = _stdout()
    out.print(f"chatting with {tuned.loaded.name}" + (f" beside {compare}" if compare else "") + f" ({COMMANDS_HELP})")
    while True:
        try:
            text = input("you> ")
        except (EOFError, KeyboardInterrupt):
            out.print()
            return
        if not _handle(text.strip(), tuned, base, out):
            return


def _stdout():
    from rich.console import Console

    return Console(highlight=False, markup=False, soft_wrap=True)


def _handle(text: str, tuned, base, out) -> bool:
    """Answer one line; False when the user asked to leave."""
    if text in ("/exit", "/quit"):
        return False
    if text == "/reset":
        for session in (tuned, base):
            if session:
                session.reset()
        out.print("(conversation cleared)")
    elif text.startswith("/"):
        out.print(f"unknown command {text} ({COMMANDS_HELP})")
    elif text:
        try:
            _compare(text, tuned, base, out) if base else _stream(text, tuned, out)
        except KeyboardInterrupt:
            out.print("\n(interrupted)")
    return True


def _stream(text: str, session, out) -> None:
    out.print("model> ", end="")
    for piece in session.stream(text):
        out.print(piece, end="")
        out.file.flush()
    out.print()


def _compare(text: str, tuned, base, out) -> None:
    from rich.table import Table

    from tunelab.progress import status

    with status("Generating both answers"):
        answers = (base.reply(text), tuned.reply(text))
    table = Table(show_lines=True, expand=True)
    table.add_column(f"base: {base.loaded.name}", ratio=1)
    table.add_column(f"tuned: {tuned.loaded.name}", ratio=1)
    table.add_row(*answers)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat_command)
