"""Constrained decoding: answers that parse as JSON, match a JSON Schema or call a tool, whatever the model.

The library is llguidance (guidance-ai's Rust engine, a structured-output backend of vLLM and SGLang
and llama.cpp's optional one). It installs from PyPI as one 3 MB wheel with no dependencies (xgrammar
pulls triton and a TVM runtime into a CPU install; outlines brings a framework around its grammar
engine, and lm-format-enforcer walks the vocabulary in Python),
computes the mask over SmolLM2's 49k tokens in 10-30 µs on a CPU, compiles a JSON Schema in under a
millisecond (enums, $ref, nested objects, arrays, integer bounds, maxLength...), refuses a schema
keyword it cannot enforce instead of ignoring it, and takes Lark grammars with inline `%json{...}`,
which constrains a tool call's arguments after a fixed or chosen function name. It plugs into
transformers' generate as a plain LogitsProcessor (below), so nothing else in generation changes.

`GrammarProcessor` is a transformers LogitsProcessor holding one llguidance matcher per batch row:
each step it feeds the matcher the token just chosen and sets every token the grammar forbids to
-inf. It also keeps the answer closable within `max_new_tokens`. Each step it computes a short way
to finish from where the answer is (`closing_plan`: forced bytes, else `"`, `}`, `]`, `,`, digits,
letters first); once only that many tokens are left (plus SPARE), it emits the plan. Before that,
near the end, a choice among few tokens (a new array item, another call, an optional key) is checked
token by token and a token after which the answer could no longer close is dropped; inside a string
the last few tokens keep to letters, digits and spaces, which cannot open anything. A JSON answer
cut short by the budget is therefore closed early: it still parses and matches its schema, though
its strings may end sooner than the model wanted. `shortened[row]` says so, and the service then
reports finish_reason "length" (the budget shaped the answer; the official SDK's `.parse()` raises
on "length", `.create()` returns the valid content). Only when even the shortest completion does
not fit the budget from the start is the answer truncated, as OpenAI's would be. No default
maxLength is added to schemas: the budget does that job without changing what a schema allows.
"""

import json
import weakref
from dataclasses import dataclass

# The compact style of json.dumps: no run of whitespace a small model can loop in.
JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
# The order in which the closing plan tries one-byte tokens when nothing is forced.
CLOSING_BYTES = b'"}],0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-.[{ _'
# Tokens made of these bytes cannot open a structure, so they leave the closing plan's length nearly unchanged.
PLAIN_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
SPARE = 2  # tokens kept free when the closing plan starts, for a plan that grew by a step
LOOKAHEAD = 64  # within this many tokens of having to close, a choice among few tokens is checked token by token
MAX_PROBES = 64  # "few": structural positions (between items, calls, keys); inside a string thousands are allowed
ZONE = 8  # and within this many, a choice among many keeps to plain tokens (and the plan's next one)
PLAN_LIMIT = 1024


class GrammarError(ValueError):
    """A schema or grammar llguidance cannot enforce; the message says why."""


@dataclass(frozen=True)
class Constraint:
    """A compiled llguidance grammar, checked when built (no tokenizer needed)."""

    grammar: str

    @classmethod
    def json_schema(cls, schema: dict) -> "Constraint":
        from llguidance import LLMatcher

        if not isinstance(schema, dict):
            raise GrammarError("the schema must be a JSON object")
        try:
            grammar = LLMatcher.grammar_from_json_schema(schema, defaults=JSON_STYLE)
        except (ValueError, TypeError) as exc:
            raise GrammarError(str(exc)) from exc
        return cls._checked(grammar)

    @classmethod
    def json_object(cls) -> "Constraint":
        return cls.json_schema({"type": "object"})

    @classmethod
    def lark(cls, lark: str) -> "Constraint":
        from llguidance import LLMatcher

        return cls._checked(LLMatcher.grammar_from_lark(lark))

    @classmethod
    def _checked(cls, grammar: str) -> "Constraint":
        from llguidance import LLMatcher

        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
        if is_error:
            raise GrammarError(messages[0])
        return cls(grammar)

    def processor(self, tokenizer, max_new_tokens: int) -> "GrammarProcessor":
        return GrammarProcessor(vocabulary(tokenizer), self.grammar, max_new_tokens)


def lark_json(schema: dict) -> str:
    """`%json{...}` for a Lark rule: the schema in the compact JSON style (its own x-guidance wins)."""
    return "%json " + json.dumps({**schema, "x-guidance": {**JSON_STYLE, **schema.get("x-guidance", {})}})


def lark_literal(text: str) -> str:
    return json.dumps(text)


@dataclass
class Vocabulary:
    """What constraining needs of a tokenizer, built once per tokenizer (about a second for 49k tokens)."""

    llg: object  # llguidance.LLTokenizer
    size: int
    closing_tokens: list[int]  # one-byte tokens in CLOSING_BYTES order
    plain: object  # numpy bool array [size]: tokens of PLAIN_BYTES only

    def token_bytes(self, token: int) -> bytes:
        return self.llg.decode_bytes([token])


_VOCABULARIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def vocabulary(tokenizer) -> Vocabulary:
    if tokenizer not in _VOCABULARIES:
        _VOCABULARIES[tokenizer] = _build_vocabulary(tokenizer)
    return _VOCABULARIES[tokenizer]


def _build_vocabulary(tokenizer) -> Vocabulary:
    import llguidance.hf
    import numpy as np

    try:
        llg = llguidance.hf.from_tokenizer(tokenizer)
    except ValueError as exc:
        raise GrammarError(f"constrained decoding needs a fast tokenizer: {exc}") from exc
    size = llg.vocab_size
    closing = []
    for byte in CLOSING_BYTES:
        ids = llg.tokenize_bytes(bytes([byte]))
        if len(ids) == 1:
            closing.append(ids[0])
    plain = np.array(
        [bool(b) and not llg.is_special_token(t) and PLAIN_BYTES.issuperset(b) for t, b in _all_bytes(llg, size)]
    )
    return Vocabulary(llg, size, closing, plain)


def _all_bytes(llg, size: int):
    for token in range(size):
        yield token, llg.decode_bytes([token])


def _allows(bitmask: bytes, token: int) -> bool:
    return bool(bitmask[token >> 3] >> (token & 7) & 1)


def _unpack(bitmask: bytes, size: int):
    import numpy as np

    return np.unpackbits(np.frombuffer(bitmask, dtype=np.uint8), bitorder="little")[:size].astype(bool)


def closing_plan(matcher, closing_tokens: list[int], limit: int) -> list[int] | None:
    """The tokens of a short way to finish the grammar from `matcher`'s state, or None past `limit` tokens."""
    probe, plan = matcher.deep_copy(), []
    while not probe.is_accepting():
        if len(plan) >= limit:
            return None
        forced = probe.compute_ff_tokens()
        if not forced:
            mask = probe.compute_bitmask()
            forced = [next((t for t in closing_tokens if _allows(mask, t)), -1)]
            if forced[0] < 0:
                return None
        if not probe.consume_tokens(forced):
            return None
        plan += forced
    return plan


class _Row:
    def __init__(self, matcher):
        self.matcher, self.plan, self.done, self.shortened = matcher, None, False, False

    def take(self, token: int, end_ids: set[int]) -> None:
        if self.done:
            return
        if token in end_ids:
            self.done = True
            return
        if self.plan:
            self.plan.pop(0)
        if not self.matcher.consume_token(token):
            self.done = True  # cannot happen with the mask applied; stop constraining rather than fail the request

    def allowed(self, vocab: Vocabulary, left: int, eos: int):
        """A bool array over the vocabulary: what this row may emit with `left` tokens to go (this one included)."""
        import numpy as np

        if self.plan is None:
            plan = closing_plan(self.matcher, vocab.closing_tokens, min(left, PLAN_LIMIT))
            if plan is not None and len(plan) + 1 + SPARE >= left:
                self.plan, self.shortened = plan, not self.matcher.is_stopped()
        if self.plan is not None:
            only = np.zeros(vocab.size, dtype=bool)
            only[self.plan[0] if self.plan else eos] = True
            return only
        mask = _unpack(self.matcher.compute_bitmask(), vocab.size)
        if plan is None or len(plan) + 1 + SPARE + LOOKAHEAD < left:
            return mask
        candidates = np.flatnonzero(mask)
        if len(candidates) <= MAX_PROBES:  # a structural choice: drop each token after which the answer cannot close
            for token in candidates:
                mask[token] = token == eos or self._closable_after(int(token), vocab, left - 2 - SPARE)
        elif len(plan) + 1 + SPARE + ZONE >= left:
            mask &= vocab.plain
        mask[plan[0] if plan else eos] = True
        return mask

    def _closable_after(self, token: int, vocab: Vocabulary, limit: int) -> bool:
        probe = self.matcher.deep_copy()
        return (
            limit >= 0 and probe.consume_token(token) and closing_plan(probe, vocab.closing_tokens, limit) is not None
        )


class GrammarProcessor:
    """A transformers LogitsProcessor constraining every row of a batch to one grammar (see the module docstring)."""

    def __init__(self, vocab: Vocabulary, grammar: str, max_new_tokens: int):
        self.vocab, self.grammar, self.max_new_tokens = vocab, grammar, max_new_tokens
        self.eos, self.end_ids = vocab.llg.eos_token, set(vocab.llg.eos_tokens)
        self.start, self.rows = None, []

    @property
    def shortened(self) -> list[bool]:
        return [row.shortened for row in self.rows]

    def _matcher(self):
        from llguidance import LLMatcher

        matcher = LLMatcher(self.vocab.llg, self.grammar, log_level=0)
        if matcher.is_error():
            raise GrammarError(matcher.get_error())
        return matcher

    def __call__(self, input_ids, scores):
        import numpy as np
        import torch

        if self.start is None:
            self.start = input_ids.shape[1]
            first = self._matcher()
            self.rows = [_Row(first.deep_copy()) for _ in range(input_ids.shape[0])]
        else:
            for row, token in zip(self.rows, input_ids[:, -1].tolist()):
                row.take(token, self.end_ids)
        left = self.max_new_tokens - (input_ids.shape[1] - self.start)
        forbidden = np.zeros(tuple(scores.shape), dtype=bool)
        width = min(self.vocab.size, scores.shape[1])
        for index, row in enumerate(self.rows):
            if not row.done:
                forbidden[index, :width] = ~row.allowed(self.vocab, left, self.eos)[:width]
                forbidden[index, width:] = True  # logits past the tokenizer's vocabulary (padding)
        return scores.masked_fill_(torch.from_numpy(forbidden).to(scores.device), float("-inf"))
