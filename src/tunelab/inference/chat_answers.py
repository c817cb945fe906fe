"""Chat answers as the service gives them: plain text, text in a response format, or tool calls.

With tool_choice "required" or a named function the answer is constrained to calls from its
first token (tool_calls.py). With "auto" the model answers freely until it opens a call
(TOOL_CALL_OPEN ends that first pass); the call is then generated under the call grammar, so its
name is one of the tools and its arguments match the function's parameters, as OpenAI's strict
function calling promises. Both passes share the request's token budget.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from tunelab.inference.constrained import Constraint
from tunelab.inference.tool_calls import CallGrammar, calls_text


@dataclass(frozen=True)
class AnswerPlan:
    format: Constraint | None = None  # response_format json_object / json_schema
    forced: CallGrammar | None = None  # tool_choice required or named: the answer is calls
    optional: CallGrammar | None = None  # tool_choice auto: the grammar of a call the model opens


@dataclass
class ChatAnswer:
    content: str | None
    tool_calls: list[dict]
    finish_reason: str  # stop, length or tool_calls
    completion_tokens: int
    logprobs: list = field(default_factory=list)


def answer_chat(
    model,
    tokenizer,
    prompt: str,
    n: int,
    plan: AnswerPlan,
    *,
    max_new_tokens: int,
    stop: list[str] | None,
    extra: Callable[[object], list],
    **sampling,
) -> list[ChatAnswer]:
    """`n` answers to `prompt`; `extra(tokenizer)` adds processors (penalties); `sampling` goes to generate_answers."""
    from tunelab.data.tools import TOOL_CALL_OPEN
    from tunelab.inference.generate import generate_answers

    def run(prompts: list[str], budget: int, constraint: Constraint | None, stops: list[str] | None):
        def processors(tok):
            return extra(tok) + ([constraint.processor(tok, budget)] if constraint else [])

        return generate_answers(
            model, tokenizer, prompts, max_new_tokens=budget, stop=stops, processors=processors, **sampling
        )

    if plan.forced:
        answers = run([prompt + plan.forced.prefix] * n, max_new_tokens, plan.forced.constraint, None)
        return [_calls(calls_text(plan.forced, a.text), a.finish_reason, [a]) for a in answers]
    stops = [*(stop or []), TOOL_CALL_OPEN] if plan.optional else stop
    answers = run([prompt] * n, max_new_tokens, plan.format, stops)
    if plan.optional is None:
        return [ChatAnswer(a.text, [], a.finish_reason, len(a.tokens), a.logprobs) for a in answers]
    results = []
    for first in answers:
        budget = max_new_tokens - len(first.tokens)
        if first.stopped_at != TOOL_CALL_OPEN or budget < 1:
            results.append(_calls(first.text, first.finish_reason, [first]))
            continue
        call = run([prompt + first.text + plan.optional.prefix], budget, plan.optional.constraint, None)[0]
        results.append(_calls(first.text + calls_text(plan.optional, call.text), call.finish_reason, [first, call]))
    return results


def _calls(text: str, finish_reason: str, passes: list) -> ChatAnswer:
    from tunelab.data.tools import parse_tool_calls

    content, calls = parse_tool_calls(text)
    if calls and finish_reason != "length":
        finish_reason = "tool_calls"
    tokens = sum(len(p.tokens) for p in passes)
    return ChatAnswer(content, calls, finish_reason, tokens, [e for p in passes for e in p.logprobs])
