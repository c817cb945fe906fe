"""Tool calls at inference: the grammar that makes an answer a valid call of the given functions.

The call format is tunelab.data.tools' (the one training renders): `forced_call_prefix(name)`, then
the arguments object, then `}` and TOOL_CALL_CLOSE. A call is forced by appending to the prompt
what every allowed call starts with (the common prefix of their forced_call_prefix) and letting a
Lark grammar choose the rest of the name and constrain the arguments to the function's
`parameters` schema; several calls in a row are allowed when parallel calls are. The closing
TOOL_CALL_CLOSE is written by `calls_text`, not generated, so a template whose <tool_call> is a
special token still reads the same call.
"""

import os
from dataclasses import dataclass

from tunelab.inference.constrained import Constraint, lark_json, lark_literal


@dataclass(frozen=True)
class CallGrammar:
    prefix: str  # appended to the prompt: the answer starts inside the first call
    constraint: Constraint


def parameters_constraint(parameters: dict) -> Constraint:
    """The arguments' grammar alone: raises GrammarError when the schema cannot be enforced."""
    return Constraint.json_schema(parameters)


def call_grammar(functions: dict[str, dict], names: list[str], many: bool) -> CallGrammar:
    """One call (or, with `many`, one or more) of a function in `names`, arguments per `functions[name]`."""
    from tunelab.data.tools import TOOL_CALL_CLOSE, forced_call_prefix

    prefixes = [forced_call_prefix(name) for name in names]
    common = os.path.commonprefix(prefixes)
    rules = [
        f"call_{i}: {lark_literal(prefix[len(common) :])} {lark_json(functions[name])} {lark_literal('}')}"
        for i, (name, prefix) in enumerate(zip(names, prefixes))
    ]
    call = "call: " + " | ".join(f"call_{i}" for i in range(len(names)))
    between = lark_literal("\n" + TOOL_CALL_CLOSE + "\n" + common)
    start = f"start: call ({between} call)*" if many else "start: call"
    return CallGrammar(common, Constraint.lark("\n".join([start, call, *rules])))


def calls_text(grammar: CallGrammar, generated: str) -> str:
    """The whole answer of a constrained call: prefix, what was generated, and the closing tag."""
    from tunelab.data.tools import TOOL_CALL_CLOSE

    return grammar.prefix + generated + "\n" + TOOL_CALL_CLOSE
