"""What generation records and adjusts at each step: each row's tokens, their log-probabilities, and
OpenAI's frequency/presence penalties and logit_bias.

Log-probabilities are those of the model's own next-token distribution: log_softmax of the logits
as the model gave them, before temperature, top_p, penalties, logit_bias and any grammar mask (a
`StepLog` is both generate's streamer and its first logits processor). Like OpenAI's, they do not
change with the sampling settings, and a token a grammar forced shows how little the model wanted it.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate


@dataclass
class TokenLogprob:
    token: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)  # most likely first


class StepLog:
    """A transformers streamer (put, end) and logits processor (__call__) that keeps each row's generated
    tokens (until its end token) and, when `top_logprobs` is not None, each token's log-probability with
    that many alternatives. `on_token(row, token, logprob)` is called as each token arrives (streaming).

    The processor queues each step's distribution and the streamer takes it with that step's tokens, so
    they stay paired where generate streams a step late (its deferred stop check on some devices)."""

    def __init__(self, rows: int, end_ids: set[int], top_logprobs: int | None = None, on_token: Callable | None = None):
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.logprobs: list[list[TokenLogprob]] = [[] for _ in range(rows)]
        self.ended = [False] * rows  # the row emitted an end token (or padding after a stop sequence)
        self.end_ids, self.top_logprobs, self.on_token = end_ids, top_logprobs, on_token
        self.pending: deque = deque()  # log-softmax of steps whose token has not arrived yet
        self.prompt_seen = False

    def __call__(self, input_ids, scores):
        if self.top_logprobs is not None:
            self.pending.append(scores.float().log_softmax(-1).cpu())
        return scores

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate hands the prompt (or the decoder's start) first
            self.prompt_seen = True
            return
        step = self.pending.popleft() if self.pending else None
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.ended[row]:
                continue
            if token in self.end_ids:
                self.ended[row] = True
                continue
            self.tokens[row].append(token)
            entry = self._entry(step[row], token) if step is not None else None
            if entry is not None:
                self.logprobs[row].append(entry)
            if self.on_token is not None:
                self.on_token(row, token, entry)

    def _entry(self, logprobs, token: int) -> TokenLogprob:
        top = []
        if self.top_logprobs:
            values, ids = logprobs.topk(self.top_logprobs)
            top = list(zip(ids.tolist(), values.tolist()))
        return TokenLogprob(token, float(logprobs[token]), top)

    def end(self) -> None:
        pass


class Penalties:
    """OpenAI's frequency and presence penalties and logit_bias, as a transformers LogitsProcessor.

    logits[j] -= frequency * count[j] + presence * (count[j] > 0), counting the tokens generated so
    far in that row (not the prompt's); then logit_bias[j] is added."""

    def __init__(self, frequency: float = 0.0, presence: float = 0.0, logit_bias: dict[int, float] | None = None):
        self.frequency, self.presence, self.logit_bias = frequency, presence, logit_bias or {}
        self.start = None

    def __call__(self, input_ids, scores):
        import torch

        if self.start is None:
            self.start = input_ids.shape[1]
        generated = input_ids[:, self.start :]
        if generated.shape[1] and (self.frequency or self.presence):
            counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
            scores = scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)
        if self.logit_bias:
            ids = torch.tensor(list(self.logit_bias), device=scores.device)
            scores[:, ids] += torch.tensor(list(self.logit_bias.values()), device=scores.device, dtype=scores.dtype)
        return scores


def token_bytes(tokenizer):
    """token id -> its bytes (a token can hold part of a UTF-8 character); llguidance's view of a fast tokenizer."""
    from tunelab.inference.constrained import GrammarError, vocabulary

    try:
        return vocabulary(tokenizer).token_bytes
    except GrammarError:  # a slow tokenizer: its decoded text is the best there is
        return lambda token: tokenizer.decode([token]).encode()


def openai_logprobs(tokenizer, entries: list[TokenLogprob]) -> list[dict]:
    """ChatCompletionTokenLogprob objects (-9999.0 stands for a log-probability too small to write)."""
    bytes_of = token_bytes(tokenizer)

    def one(token: int, logprob: float) -> dict:
        raw = bytes_of(token)
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": max(logprob, -9999.0), "bytes": list(raw)}

    return [{**one(e.token, e.logprob), "top_logprobs": [one(t, lp) for t, lp in e.top]} for e in entries]


def legacy_logprobs(tokenizer, entries: list[TokenLogprob]) -> dict:
    """/v1/completions' logprobs: parallel lists of tokens, their log-probabilities, alternatives and text offsets."""
    rows = openai_logprobs(tokenizer, entries)
    tokens = [row["token"] for row in rows]
    return {
        "tokens": tokens,
        "token_logprobs": [row["logprob"] for row in rows],
        "top_logprobs": [{top["token"]: top["logprob"] for top in row["top_logprobs"]} for row in rows],
        "text_offset": list(accumulate((len(t) for t in tokens), initial=0))[:-1],
    }
