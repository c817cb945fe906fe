"""Token counts for length filters and token_stats, with the named model's tokenizer.

`data.tokenizer: whitespace` counts words instead (fast, for tests and huge files), and the
manifest says which counter was used; `load_counter` is the one place that decides.
"""

from dataclasses import dataclass

MESSAGE_OVERHEAD = 4  # role markers a chat template adds per message, roughly, in most templates


@dataclass
class TokenCounter:
    """Counts and truncates with `tokenizer` (an HF tokenizer) or, when None, whitespace words."""

    name: str
    tokenizer: object = None

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        if self.tokenizer is None:
            return [len(text.split()) for text in texts]
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def truncate(self, text: str, keep: int) -> str:
        """The first `keep` tokens of text."""
        if self.tokenizer is None:
            return " ".join(text.split()[:keep])
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][:keep]
        return self.tokenizer.decode(ids)


def load_counter(model: str | None, tokenizer=None) -> TokenCounter:
    """A counter for a given tokenizer, else the named model's, else the bundled default's."""
    if tokenizer is not None:
        return TokenCounter(getattr(tokenizer, "name_or_path", "") or "tokenizer", tokenizer)
    if model == "whitespace":
        return TokenCounter("whitespace")
    from tunelab.models.loading import load_tokenizer

    name = model or "smollm2-135m-instruct"
    return TokenCounter(name, load_tokenizer(name))


def text_tokens(counter: TokenCounter, records: list[list[str]]) -> list[list[int]]:
    """Tokens of each text field of each record, counted in one call to the tokenizer."""
    counts = iter(counter.count([text for texts in records for text in texts]))
    return [[next(counts) for _ in texts] for texts in records]


def sequence_tokens(counts: list[int], sequence: list[int]) -> int:
    """Tokens of one sequence of text fields (indices into counts), plus chat overhead per field when several."""
    total = sum(counts[i] for i in sequence)
    return total + (MESSAGE_OVERHEAD * len(sequence) if len(sequence) > 1 else 0)


def pair_tokens(counts: list[int], pair: list[list[int]]) -> tuple[int, int, int]:
    """(prompt, chosen, rejected) tokens of a pair from its text counts and its two sequences (the prompt's
    texts, then one reply), each with its chat overhead, so that the prompt plus one reply is that side's
    sequence length."""
    (*prompt, chosen), (*_, rejected) = pair
    prompt_tokens = sum(counts[i] for i in prompt) + MESSAGE_OVERHEAD * len(prompt)
    return prompt_tokens, counts[chosen] + MESSAGE_OVERHEAD, counts[rejected] + MESSAGE_OVERHEAD
