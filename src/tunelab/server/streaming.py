"""Token-by-token generation for stream=true, through the same generate_answers as plain requests.

Generation runs in its own thread holding the model for the whole answer; the caller reads pieces
of text, each with the log-probabilities of the tokens that completed it, as they come. Text is
decoded incrementally (a piece waits for the bytes that finish a character); stop sequences end
the answer, and text that might begin one is held back.
"""

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Piece:
    text: str
    logprobs: list = field(default_factory=list)  # steps.TokenLogprob of the tokens that completed `text`


class IncrementalDecoder:
    """New text per token, holding back an unfinished UTF-8 character (the usual prefix/read offsets)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.tokens, self.prefix, self.read = tokenizer, [], 0, 0

    def add(self, token: int) -> str:
        self.tokens.append(token)
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        before = decode(self.tokens[self.prefix : self.read])
        after = decode(self.tokens[self.prefix :])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""
        self.prefix, self.read = self.read, len(self.tokens)
        return after[len(before) :]


_DONE = object()


def start_stream(pool, target, prompt: str, settings: dict, counts: dict) -> Iterator[Piece]:
    """Start generating `prompt` with generate_answers(**settings) and return the pieces' iterator.

    Returns once the model is ready, so that an error loading it is raised here, before any byte is
    sent. `counts` holds the tokenizer then, and prompt_tokens, completion_tokens and finish_reason
    when the iterator ends."""
    events: queue.Queue = queue.Queue()

    def work():
        from tunelab.inference.generate import generate_answers

        try:
            with pool.use(target) as ready:
                decoder, held = IncrementalDecoder(ready.tokenizer), []

                def on_token(row, token, logprob):
                    held.extend([logprob] if logprob is not None else [])
                    text = decoder.add(token)
                    if text:
                        events.put(Piece(text, held[:]))
                        held.clear()

                prompt_tokens = len(ready.tokenizer(prompt, add_special_tokens=False)["input_ids"])
                events.put(ready.tokenizer)
                answer = generate_answers(ready.model, ready.tokenizer, [prompt], **settings, on_token=on_token)[0]
            if held:  # tokens whose text never completed (a cut UTF-8 character)
                events.put(Piece("", held[:]))
            counts.update(prompt_tokens=prompt_tokens, completion_tokens=len(answer.tokens))
            counts["finish_reason"] = answer.finish_reason
            events.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            events.put(exc)

    threading.Thread(target=work, daemon=True).start()
    first = events.get()
    if isinstance(first, BaseException):
        raise first
    counts["tokenizer"] = first
    return _held_back(_pieces(events), settings.get("stop"))


def _pieces(events: queue.Queue) -> Iterator[Piece]:
    while (event := events.get()) is not _DONE:
        if isinstance(event, BaseException):
            raise event
        yield event


def _held_back(pieces: Iterator[Piece], stop: list[str] | None) -> Iterator[Piece]:
    """The pieces up to the first stop sequence, holding back text that may begin one."""
    if not stop:
        yield from (p for p in pieces if p.text or p.logprobs)
        return
    pending, logprobs, hold = "", [], max(len(s) for s in stop) - 1
    for piece in pieces:
        pending += piece.text
        logprobs += piece.logprobs
        cut = min((i for i in (pending.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            if pending[:cut]:
                yield Piece(pending[:cut], logprobs)
            for _ in pieces:  # drain so generation can finish
                pass
            return
        if len(pending) > hold:
            yield Piece(pending[: len(pending) - hold], logprobs)
            pending, logprobs = pending[len(pending) - hold :], []
    if pending or logprobs:
        yield Piece(pending, logprobs)


def _until_stop(pieces: Iterator[str], stop: list[str] | None) -> Iterator[str]:
    """`_held_back` over plain strings."""
    return (piece.text for piece in _held_back((Piece(text) for text in pieces), stop))
