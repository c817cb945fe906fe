"""/v1/models, /v1/chat/completions and /v1/completions, plain and streamed as server-sent events."""

import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from tunelab.server.api_errors import ApiError
from tunelab.server.inference_schemas import ChatCompletion, ChatRequest, CompletionRequest, TextCompletion
from tunelab.server.schemas import Model, ModelList
from tunelab.server.store import new_id
from tunelab.server.streaming import stream_text

router = APIRouter(prefix="/v1", tags=["inference"])
DEFAULT_MAX_TOKENS = 256
ROLES = {"developer": "system", "tool": "user"}
SSE = {"text/event-stream": {"schema": {"type": "string"}}}


@router.get("/models", response_model=ModelList, summary="Base and fine-tuned models")
def list_models(request: Request):
    return {"object": "list", "data": request.app.state.service.pool.listing()}


@router.get("/models/{model:path}", response_model=Model, summary="Retrieve a model")
def retrieve_model(request: Request, model: str):
    for entry in request.app.state.service.pool.listing():
        if entry["id"] == model:
            return entry
    raise ApiError(404, f"The model '{model}' does not exist.", "model", "model_not_found")


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def complete(pool, target, prompts: list[str], body, max_tokens: int) -> list[tuple[str, int, int]]:
    """(text, prompt tokens, completion tokens) per prompt, through the shared batched generator."""
    from tunelab.inference.generate import generate

    with pool.use(target) as ready:
        texts = generate(
            ready.model,
            ready.tokenizer,
            prompts,
            max_new_tokens=max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            stop=body.stops(),
            seed=body.seed,
            batch_size=8,
        )
        count = lambda text: len(ready.tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        return [(text, count(prompt), min(count(text), max_tokens)) for prompt, text in zip(prompts, texts)]


def chat_prompt_for(pool, target, messages) -> str:
    from tunelab.inference.generate import chat_prompt

    turns = [{"role": ROLES.get(m.role, m.role), "content": m.text()} for m in messages]
    with pool.use(target) as ready:
        return chat_prompt(ready.tokenizer, turns)


def sse(chunks) -> StreamingResponse:
    def events():
        for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Chat with a base or fine-tuned model",
    responses={200: {"content": SSE}},
)
def chat_completions(request: Request, body: ChatRequest):
    pool = request.app.state.service.pool
    target = pool.target(body.model)
    prompt = chat_prompt_for(pool, target, body.messages)
    max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
    ident, created = new_id("chatcmpl"), int(time.time())
    if body.stream:
        return sse(chat_chunks(pool, target, prompt, body, max_tokens, ident, created))
    results = complete(pool, target, [prompt] * body.n, body, max_tokens)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": "length" if used >= max_tokens else "stop",
        }
        for i, (text, _, used) in enumerate(results)
    ]
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": choices,
        "usage": usage(results[0][1], sum(r[2] for r in results)),
        "system_fingerprint": None,
    }


def chat_chunks(pool, target, prompt, body: ChatRequest, max_tokens: int, ident: str, created: int):
    def chunk(delta: dict, finish=None, usage_block=None, choices=True) -> dict:
        body_ = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
        }
        if usage_block is not None:
            body_["usage"] = usage_block
        return body_

    counts = {}
    yield chunk({"role": "assistant", "content": ""})
    for piece in stream_text(
        pool, target, prompt, max_tokens, body.temperature, body.top_p, body.stops(), body.seed, counts
    ):
        yield chunk({"content": piece})
    yield chunk({}, counts["finish_reason"])
    if body.stream_options and body.stream_options.include_usage:
        yield chunk({}, usage_block=usage(counts["prompt_tokens"], counts["completion_tokens"]), choices=False)


@router.post(
    "/completions", response_model=TextCompletion, summary="Complete a raw prompt", responses={200: {"content": SSE}}
)
def completions(request: Request, body: CompletionRequest):
    pool = request.app.state.service.pool
    target = pool.target(body.model)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    max_tokens = body.max_tokens or 16  # OpenAI's default for this endpoint
    ident, created = new_id("cmpl"), int(time.time())
    if body.stream:
        if len(prompts) * body.n != 1:
            raise ApiError(400, "stream=true takes one prompt and n=1 here.", "stream", "unsupported_value")
        return sse(completion_chunks(pool, target, prompts[0], body, max_tokens, ident, created))
    every = [p for p in prompts for _ in range(body.n)]
    results = complete(pool, target, every, body, max_tokens)
    choices = [
        {
            "index": i,
            "text": (every[i] if body.echo else "") + text,
            "logprobs": None,
            "finish_reason": "length" if used >= max_tokens else "stop",
        }
        for i, (text, _, used) in enumerate(results)
    ]
    prompt_tokens = sum(r[1] for r in results[:: body.n])
    return {
        "id": ident,
        "object": "text_completion",
        "created": created,
        "model": body.model,
        "choices": choices,
        "usage": usage(prompt_tokens, sum(r[2] for r in results)),
        "system_fingerprint": None,
    }


def completion_chunks(pool, target, prompt, body: CompletionRequest, max_tokens: int, ident: str, created: int):
    def chunk(text: str, finish=None) -> dict:
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }

    counts = {}
    if body.echo:
        yield chunk(prompt)
    for piece in stream_text(
        pool, target, prompt, max_tokens, body.temperature, body.top_p, body.stops(), body.seed, counts
    ):
        yield chunk(piece)
    yield chunk("", counts["finish_reason"])
