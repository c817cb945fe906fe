"""/v1/chat/completions and /v1/completions, plain and streamed as server-sent events.

Every request field is honoured or refused with a 400 naming it (inference_schemas.py). A streamed
answer with tools (tool_choice other than "none") is generated whole, then sent as the spec's
chunks: the content, then each call with its full arguments, then the finish reason. Other answers,
response formats and logprobs included, stream token by token.
"""

import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tunelab import __version__
from tunelab.server.api_errors import ApiError
from tunelab.server.inference_schemas import ChatCompletion, ChatRequest, CompletionRequest, TextCompletion
from tunelab.server.store import new_id
from tunelab.server.streaming import start_stream

router = APIRouter(prefix="/v1", tags=["inference"])
DEFAULT_MAX_TOKENS = 256
SYSTEM_FINGERPRINT = f"tunelab-{__version__}"
SSE = {"text/event-stream": {"schema": {"type": "string"}}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def refuse_unsupported(body) -> None:
    from tunelab.server.inference_schemas import UNSUPPORTED

    if refusal := body.refused():
        param, why = refusal
        code = "unsupported_parameter" if param in UNSUPPORTED else "invalid_value"
        raise ApiError(400, f"Unsupported request: {why}.", param, code)


def constraint_or_400(build, param: str):
    from tunelab.inference.constrained import GrammarError

    try:
        return build()
    except GrammarError as exc:
        raise ApiError(400, f"Invalid schema for {param}: {exc}", param, "invalid_value") from exc


def answer_plan(body: ChatRequest):
    """What constrains the answer: the response format, and the calls tool_choice asks for."""
    from tunelab.inference.chat_answers import AnswerPlan
    from tunelab.inference.constrained import Constraint
    from tunelab.inference.tool_calls import call_grammar, parameters_constraint

    fmt = None
    if body.format_type() == "json_object":
        fmt = Constraint.json_object()
    elif body.format_type() == "json_schema":
        schema = body.response_format.json_schema.schema_
        fmt = constraint_or_400(lambda: Constraint.json_schema(schema), "response_format")
    choice = body.choice()
    if choice == "none":
        return AnswerPlan(format=fmt)
    functions = {tool.function.name: tool.function.parameters for tool in body.tools}
    for i, parameters in enumerate(functions.values()):
        constraint_or_400(lambda p=parameters: parameters_constraint(p), f"tools.{i}.function.parameters")
    names = list(functions) if choice in ("auto", "required") else [choice]
    grammar = call_grammar(functions, names, many=body.parallel_tool_calls and choice in ("auto", "required"))
    return AnswerPlan(
        format=fmt, forced=None if choice == "auto" else grammar, optional=grammar if choice == "auto" else None
    )


def penalties(body):
    """The processors frequency_penalty, presence_penalty and logit_bias ask for (a factory per tokenizer)."""
    from tunelab.inference.steps import Penalties

    bias = {int(token): value for token, value in (body.logit_bias or {}).items()}
    if not (body.frequency_penalty or body.presence_penalty or bias):
        return lambda tokenizer: []
    return lambda tokenizer: [Penalties(body.frequency_penalty, body.presence_penalty, bias)]


def chat_prompt_for(pool, target, body: ChatRequest) -> tuple[str, int]:
    """The rendered conversation (with the tools) and its token count; checks logit_bias against the vocabulary."""
    from tunelab.data.tools import render

    messages = [m.for_template() for m in body.messages]
    if messages[-1]["role"] == "assistant" and not messages[-1].get("tool_calls"):
        messages = messages[:-1]  # the answer is generated anew
    tools = [tool.model_dump(exclude_unset=True) for tool in body.tools or []]  # as the caller wrote them
    with pool.use(target) as ready:
        size = len(ready.tokenizer)
        if any(not 0 <= int(t) < size for t in body.logit_bias or {}):
            raise ApiError(400, f"logit_bias names a token id outside 0..{size - 1}.", "logit_bias", "invalid_value")
        prompt = render(ready.tokenizer, messages, tools or None, add_generation_prompt=True)
        return prompt, len(ready.tokenizer(prompt, add_special_tokens=False)["input_ids"])


def sse(chunks) -> StreamingResponse:
    def events():
        for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def sampling(body, max_tokens: int) -> dict:
    return {
        "max_new_tokens": max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "seed": body.seed,
        "stop": body.stops(),
    }


def top_logprobs(body: ChatRequest) -> int | None:
    return (body.top_logprobs or 0) if body.logprobs else None


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Chat with a base or fine-tuned model",
    responses={200: {"content": SSE}},
)
def chat_completions(request: Request, body: ChatRequest):
    refuse_unsupported(body)
    plan = answer_plan(body)
    pool = request.app.state.service.pool
    target = pool.target(body.model, request.state.project)
    prompt, prompt_tokens = chat_prompt_for(pool, target, body)
    max_tokens = body.max_new_tokens(DEFAULT_MAX_TOKENS)
    head = {
        "id": new_id("chatcmpl"),
        "created": int(time.time()),
        "model": body.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        **({"service_tier": "default"} if body.service_tier else {}),
    }
    if body.stream and body.choice() == "none":
        settings = {**sampling(body, max_tokens), "top_logprobs": top_logprobs(body)}
        settings["processors"] = lambda tok: (
            penalties(body)(tok) + ([plan.format.processor(tok, max_tokens)] if plan.format else [])
        )
        counts = {}
        pieces = start_stream(pool, target, prompt, settings, counts)
        return sse(chat_chunks(pieces, counts, head, body))
    answers, tokenizer = chat_answers(pool, target, prompt, body, plan, max_tokens)
    if body.stream:
        return sse(buffered_chunks(answers[0], tokenizer, prompt_tokens, head, body))
    choices = [chat_choice(i, answer, tokenizer, body.logprobs) for i, answer in enumerate(answers)]
    total = sum(a.completion_tokens for a in answers)
    return JSONResponse({**head, "object": "chat.completion", "choices": choices, "usage": usage(prompt_tokens, total)})


def chat_answers(pool, target, prompt: str, body: ChatRequest, plan, max_tokens: int):
    from tunelab.inference.chat_answers import answer_chat

    with pool.use(target) as ready:
        settings = sampling(body, max_tokens)
        answers = answer_chat(
            ready.model,
            ready.tokenizer,
            prompt,
            body.n,
            plan,
            **settings,
            extra=penalties(body),
            top_logprobs=top_logprobs(body),
            batch_size=8,
        )
        return answers, ready.tokenizer


def chat_logprobs(tokenizer, entries: list, content: str | None, wanted: bool) -> dict | None:
    from tunelab.inference.steps import openai_logprobs

    if not wanted:
        return None
    return {"content": openai_logprobs(tokenizer, entries) if content is not None else None, "refusal": None}


def chat_choice(index: int, answer, tokenizer, logprobs: bool) -> dict:
    """A choice of a plain answer; its content is stripped of surrounding whitespace, as tunelab's chat always has."""
    message = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    else:
        message["content"] = (message["content"] or "").strip()
    return {
        "index": index,
        "message": message,
        "logprobs": chat_logprobs(tokenizer, answer.logprobs, message["content"], logprobs),
        "finish_reason": answer.finish_reason,
    }


def chunk(head: dict, delta: dict | None, body, finish=None, logprobs=None, usage_block=None) -> dict:
    """A chat.completion.chunk; delta None makes the closing usage chunk (no choices)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]
    out = {**head, "object": "chat.completion.chunk", "choices": choices}
    if body.stream_options and body.stream_options.include_usage:
        out["usage"] = usage_block
    return out


def chat_chunks(pieces, counts: dict, head: dict, body: ChatRequest):
    yield chunk(head, {"role": "assistant", "content": ""}, body)
    for piece in pieces:
        lp = chat_logprobs(counts["tokenizer"], piece.logprobs, piece.text, body.logprobs)
        yield chunk(head, {"content": piece.text}, body, logprobs=lp)
    yield chunk(head, {}, body, counts["finish_reason"])
    if body.stream_options and body.stream_options.include_usage:
        yield chunk(head, None, body, usage_block=usage(counts["prompt_tokens"], counts["completion_tokens"]))


def buffered_chunks(answer, tokenizer, prompt_tokens: int, head: dict, body: ChatRequest):
    """A whole answer with tool calls as the spec's chunks: content, then the calls, then the finish."""
    yield chunk(head, {"role": "assistant", "content": ""}, body)
    if answer.content:
        lp = chat_logprobs(tokenizer, answer.logprobs, answer.content, body.logprobs)
        yield chunk(head, {"content": answer.content}, body, logprobs=lp)
    if answer.tool_calls:
        calls = [{"index": i, **call} for i, call in enumerate(answer.tool_calls)]
        yield chunk(head, {"tool_calls": calls}, body)
    yield chunk(head, {}, body, answer.finish_reason)
    if body.stream_options and body.stream_options.include_usage:
        yield chunk(head, None, body, usage_block=usage(prompt_tokens, answer.completion_tokens))


@router.post(
    "/completions", response_model=TextCompletion, summary="Complete a raw prompt", responses={200: {"content": SSE}}
)
def completions(request: Request, body: CompletionRequest):
    refuse_unsupported(body)
    pool = request.app.state.service.pool
    target = pool.target(body.model, request.state.project)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    max_tokens = body.max_tokens or 16  # OpenAI's default for this endpoint
    head = {"id": new_id("cmpl"), "created": int(time.time()), "model": body.model}
    head.update(object="text_completion", system_fingerprint=SYSTEM_FINGERPRINT)
    settings = {**sampling(body, max_tokens), "top_logprobs": body.logprobs, "processors": penalties(body)}
    if body.stream:
        if len(prompts) * body.n != 1:
            raise ApiError(400, "stream=true takes one prompt and n=1 here.", "stream", "unsupported_value")
        counts = {}
        pieces = start_stream(pool, target, prompts[0], settings, counts)
        return sse(completion_chunks(pieces, counts, head, body, prompts[0]))
    every = [p for p in prompts for _ in range(body.n)]
    answers, tokenizer, prompt_tokens = complete(pool, target, every, settings)
    choices = [
        {
            "index": i,
            "text": (every[i] if body.echo else "") + answer.text,
            "logprobs": completion_logprobs(tokenizer, answer.logprobs, body.logprobs),
            "finish_reason": answer.finish_reason,
        }
        for i, answer in enumerate(answers)
    ]
    completion_tokens = sum(len(a.tokens) for a in answers)
    return JSONResponse({**head, "choices": choices, "usage": usage(sum(prompt_tokens[:: body.n]), completion_tokens)})


def complete(pool, target, prompts: list[str], settings: dict):
    """Answers, the tokenizer and each prompt's token count, through the shared batched generator."""
    from tunelab.inference.generate import generate_answers

    with pool.use(target) as ready:
        answers = generate_answers(ready.model, ready.tokenizer, prompts, **settings, batch_size=8)
        counts = [len(ready.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        return answers, ready.tokenizer, counts


def completion_logprobs(tokenizer, entries: list, wanted: int | None) -> dict | None:
    from tunelab.inference.steps import legacy_logprobs

    return None if wanted is None else legacy_logprobs(tokenizer, entries)


def completion_chunks(pieces, counts: dict, head: dict, body: CompletionRequest, prompt: str):
    def piece_chunk(text: str, finish=None, logprobs=None) -> dict:
        return {**head, "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}]}

    if body.echo:
        yield piece_chunk(prompt)
    for piece in pieces:
        yield piece_chunk(piece.text, logprobs=completion_logprobs(counts["tokenizer"], piece.logprobs, body.logprobs))
    yield piece_chunk("", counts["finish_reason"])
    if body.stream_options and body.stream_options.include_usage:
        yield {**head, "choices": [], "usage": usage(counts["prompt_tokens"], counts["completion_tokens"])}
