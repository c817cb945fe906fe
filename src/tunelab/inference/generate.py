"""Batched generation: left padding, KV cache, greedy by default, with the model's chat template.

One function serves evaluation, chat, predict and the service, so that all of them see the
model exactly as training formatted it. Prompts are sorted by length so that each batch pads
little; stop sequences end a sequence inside generate (no tokens wasted past them) and are cut
from the text. benchmarks/generation_batching.py measures batched against one-at-a-time.
"""

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tunelab.data.tools import plain_messages, render
from tunelab.progress import track


def chat_prompt(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> str:
    """The prompt text for the next assistant turn (the conversation minus a final assistant answer), tools
    rendered as training renders them."""
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if getattr(tokenizer, "chat_template", None):
        return render(tokenizer, messages, tools, add_generation_prompt=True)
    return "\n".join(m["content"] for m in plain_messages(messages, tools)) + "\n"


def _batches(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def generation_kwargs(
    tokenizer,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int | None = None,
    stop: list[str] | None = None,
) -> dict:
    kwargs = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id, "use_cache": True}
    if temperature and temperature > 0 and top_p > 0:  # top_p 0 keeps only the most likely token
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs


def stop_criteria(tokenizer, stop: list[str], prompt_length: int):
    """Ends each sequence once its new text holds a stop sequence (any tokenizer; checks a short tail window)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    window = max(len(marker) for marker in stop) + 2

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            tail = input_ids[:, max(prompt_length, input_ids.shape[1] - window) :]
            texts = tokenizer.batch_decode(tail, skip_special_tokens=True)
            return torch.tensor([any(m in t for m in stop) for t in texts], device=input_ids.device)

    return StoppingCriteriaList([StopOnText()])


@dataclass
class Answer:
    """One generated answer: its text (cut at a stop sequence), its tokens (without the end token) and why it ended."""

    text: str
    tokens: list[int]
    finish_reason: str  # "stop": an end token or a stop sequence; "length": the token budget ran out
    logprobs: list = field(default_factory=list)  # steps.TokenLogprob per token, when asked for
    stopped_at: str | None = None  # the stop sequence that ended it


def generate(model, tokenizer, prompts: list[str], **options) -> list[str]:
    """Completions for raw prompt strings, in order (the texts of `generate_answers`, which takes the same
    options: max_new_tokens, temperature, top_p, top_k, stop, seed, batch_size, description, encoder_decoder)."""
    return [answer.text.strip() for answer in generate_answers(model, tokenizer, prompts, **options)]


def generate_answers(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    batch_size: int = 16,
    description: str | None = None,
    encoder_decoder: bool = False,
    top_k: int | None = None,
    seed: int | None = None,
    processors: Callable[[object], list] | None = None,
    top_logprobs: int | None = None,
    on_token: Callable | None = None,
) -> list[Answer]:
    """Completions for raw prompt strings, in order, sorted by length inside for less padding; greedy when
    temperature is 0, else sampled (temperature, top_p, top_k), reproducibly when `seed` is set; `description`
    shows a progress bar on stderr. Besides the text: tokens, finish reasons and, when `top_logprobs` is not None, each token's log-probability with that many alternatives (see steps.py).

    `processors(tokenizer)` gives each batch its extra logits processors (penalties, a grammar); one with a
    `shortened` list (constrained.GrammarProcessor) marks the rows it closed early for the budget, whose
    finish_reason is then "length". `on_token(row, token, logprob)` sees each token as it comes.
    """
    import torch
    from transformers import LogitsProcessorList

    from tunelab.inference.steps import StepLog

    if seed is not None:
        torch.manual_seed(seed)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: dict[int, Answer] = {}
    tokenizer.padding_side = "left"
    kwargs = generation_kwargs(tokenizer, max_new_tokens, temperature, top_p, top_k)
    ends = end_token_ids(model, tokenizer) | ({kwargs["pad_token_id"]} if kwargs["pad_token_id"] is not None else set())
    batches = list(_batches(order, batch_size))
    iterator = track(batches, description) if description else batches
    model.eval()
    for batch in iterator:
        encoded = tokenizer(
            [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=encoder_decoder
        ).to(model.device)
        if stop:
            kwargs["stopping_criteria"] = stop_criteria(
                tokenizer, stop, 0 if encoder_decoder else encoded["input_ids"].shape[1]
            )
        log = StepLog(len(batch), ends, top_logprobs, on_token)
        extra = processors(tokenizer) if processors else []
        with torch.no_grad():
            model.generate(**encoded, **kwargs, logits_processor=LogitsProcessorList([log, *extra]), streamer=log)
        shortened = [any(p.shortened[row] for p in extra if hasattr(p, "shortened")) for row in range(len(batch))]
        for row, i in enumerate(batch):
            answers[i] = _answer(tokenizer, log, row, stop, shortened[row])
    return [answers[i] for i in range(len(prompts))]


def _answer(tokenizer, log, row: int, stop: list[str] | None, shortened: bool) -> Answer:
    tokens = log.tokens[row]
    whole = tokenizer.decode(tokens, skip_special_tokens=True)
    cut, marker = min(((whole.find(s), s) for s in stop or [] if s in whole), default=(len(whole), None))
    finish = "stop" if log.ended[row] or marker is not None else "length"
    logprobs = log.logprobs[row]
    if marker is not None and logprobs:  # keep the tokens up to the one the stop sequence begins in
        length = lambda k: len(tokenizer.decode(tokens[:k], skip_special_tokens=True))  # noqa: E731
        logprobs = logprobs[: bisect.bisect_right(range(len(tokens) + 1), cut, key=length)]
    return Answer(whole[:cut], tokens, "length" if shortened else finish, logprobs, marker)


def sample_completions(
    model, tokenizer, prompt_ids: list[list[int]], *, k: int, max_new_tokens: int, temperature: float
) -> list[list[int]]:
    """k completions per tokenised prompt (prompt i's are at i*k .. i*k+k-1), as token ids ending at the first
    end-of-sequence token (kept, so a policy learns to stop). Greedy when temperature is 0. Reinforcement
    fine-tuning samples its groups with this; the prompts go through one left-padded generate call."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(ids) for ids in prompt_ids)
    device = next(model.parameters()).device
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompt_ids], device=device)
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompt_ids], device=device)
    kwargs = generation_kwargs(tokenizer, max_new_tokens, temperature, 1.0, top_k=0 if temperature else None)
    with torch.no_grad():
        out = model.generate(input_ids=input_ids, attention_mask=attention, num_return_sequences=k, **kwargs)
    stops = end_token_ids(model, tokenizer)
    return [_until_end(row[width:].tolist(), stops) for row in out]


def end_token_ids(model, tokenizer) -> set[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def _until_end(ids: list[int], stops: set[int]) -> list[int]:
    for index, token in enumerate(ids):
        if token in stops:
            return ids[: index + 1]
    return ids
