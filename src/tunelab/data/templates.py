"""Chat templates are code shipped with a model: check one before trusting it with the data.

transformers renders chat templates in Jinja's ImmutableSandboxedEnvironment, which blocks
attribute escapes (`''.__class__.__mro__`) but neither runaway loops nor huge outputs
(`{{ 'x' * 10**10 }}`). `check_template` renders a probe conversation first in a stricter
sandbox (size-checked `*`, `**` and `+`, an output cap, a time limit), then through the
tokenizer's own `apply_chat_template`, and turns any failure into one DataError.
"""

import signal
import threading
import time
from contextlib import contextmanager

from tunelab.errors import DataError

PROBE = [
    {"role": "system", "content": "You are a probe."},
    {"role": "user", "content": "probe question"},
    {"role": "assistant", "content": "probe answer"},
]
MAX_OUTPUT_CHARS = 200_000  # a probe of three short messages renders to a few hundred characters
MAX_VALUE_SIZE = 100_000  # longest string or list a template may build with * or +
MAX_SECONDS = 5.0
HINT = "use the model's own template, or set a trusted one on the tokenizer (tokenizer.chat_template)"


class TemplateTimeout(Exception):
    pass


def guarded_environment():
    """The sandbox transformers uses, plus limits on the operators that can allocate without bound."""
    import json

    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class Generation(Extension):  # transformers' {% generation %} tag, rendered plainly here
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    class Guarded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+"})

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError(f"exponent {right} is too large for a chat template")
            result = super().call_binop(context, operator, left, right) if operator != "*" else _times(left, right)
            if isinstance(result, (str, list, tuple)) and len(result) > MAX_VALUE_SIZE:
                raise SecurityError(f"a value of {len(result):,} items is too large for a chat template")
            return result

    def _times(left, right):
        for sized, count in ((left, right), (right, left)):
            if isinstance(sized, (str, list, tuple)) and isinstance(count, int) and len(sized) * count > MAX_VALUE_SIZE:
                raise SecurityError(f"repeating a value {count:,} times is too large for a chat template")
        return left * right

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = Guarded(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )
    env.globals.update(
        raise_exception=raise_exception,
        strftime_now=lambda fmt: time.strftime(fmt),
        namespace=jinja2.utils.Namespace,
        dict=lambda *a, **k: dict(*a, **k),
    )
    return env


@contextmanager
def time_limit(seconds: float):
    """Raise TemplateTimeout after `seconds` (SIGALRM: main thread only; elsewhere the output cap still holds)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise TemplateTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_guarded(template: str, messages: list[dict], **variables) -> str:
    """Render in the stricter sandbox, stopping once the output passes MAX_OUTPUT_CHARS."""
    pieces, size = [], 0
    for piece in guarded_environment().from_string(template).generate(messages=messages, **variables):
        size += len(piece)
        if size > MAX_OUTPUT_CHARS:
            raise DataError(
                f"chat template renders more than {MAX_OUTPUT_CHARS:,} characters for a three-message probe", HINT
            )
        pieces.append(piece)
    return "".join(pieces)


def render_probe(tokenizer, messages: list[dict], seconds: float = MAX_SECONDS, **variables) -> str:
    """A probe conversation rendered in the stricter sandbox, then by the tokenizer's own apply_chat_template
    (whose text is returned), within `seconds`: how a template is tried before it is trusted with the data.
    `variables` (such as tools) reach both renderings."""
    specials = {k: v for k, v in getattr(tokenizer, "special_tokens_map", {}).items() if isinstance(v, str)}
    with time_limit(seconds):
        render_guarded(tokenizer.chat_template, messages, add_generation_prompt=False, **specials, **variables)
        return tokenizer.apply_chat_template(messages, tokenize=False, **variables)


def check_template(tokenizer, seconds: float = MAX_SECONDS) -> str:
    """Render a probe conversation with the tokenizer's chat template; the text, or a DataError saying why not."""
    import jinja2

    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return ""
    if not isinstance(template, str):
        raise DataError(f"chat template must be text, not {type(template).__name__}", HINT)
    try:
        text = render_probe(tokenizer, PROBE, seconds)
    except TemplateTimeout:
        raise DataError(f"chat template took more than {seconds:g}s to render a three-message probe", HINT) from None
    except jinja2.exceptions.SecurityError as exc:
        raise DataError(f"chat template tried something the sandbox forbids: {str(exc)[:200]}", HINT) from None
    except jinja2.exceptions.TemplateSyntaxError as exc:
        raise DataError(f"chat template is not valid Jinja (line {exc.lineno}): {exc.message}", HINT) from None
    except (
        jinja2.exceptions.TemplateError,
        TypeError,
        ValueError,
        KeyError,
        IndexError,
        AttributeError,
        ZeroDivisionError,
        OverflowError,
        RecursionError,
        MemoryError,
        SyntaxError,
    ) as exc:
        raise DataError(
            f"chat template failed on a probe conversation: {type(exc).__name__}: {str(exc)[:200]}", HINT
        ) from None
    if not isinstance(text, str) or "probe answer" not in text:
        raise DataError("chat template drops the assistant's message from the rendered conversation", HINT)
    return text
