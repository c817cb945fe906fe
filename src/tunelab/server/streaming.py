"""Token-by-token generation for stream=true, through transformers' TextIteratorStreamer.

Generation runs in its own thread holding the model for the whole answer; the caller reads text
pieces as they come. Stop sequences end the answer, and text that might begin one is held back.
"""

import threading
from collections.abc import Iterator

from tunelab.inference.generate import generation_kwargs, stop_criteria


def stream_text(
    pool,
    target,
    prompt: str,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop: list[str] | None,
    seed: int | None,
    counts: dict,
) -> Iterator[str]:
    """Yield pieces of the answer; `counts` gets prompt_tokens, completion_tokens and finish_reason."""
    from transformers import TextIteratorStreamer

    ready_event, holder = threading.Event(), {}

    def work():
        import torch

        try:
            with pool.use(target) as ready:
                tokenizer = ready.tokenizer
                encoded = tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(ready.model.device)
                streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
                holder.update(streamer=streamer, prompt_tokens=encoded["input_ids"].shape[1])
                ready_event.set()
                kwargs = generation_kwargs(tokenizer, max_new_tokens, temperature, top_p)
                if stop:
                    kwargs["stopping_criteria"] = stop_criteria(tokenizer, stop, encoded["input_ids"].shape[1])
                if seed is not None:
                    torch.manual_seed(seed)
                with torch.no_grad():
                    output = ready.model.generate(**encoded, **kwargs, streamer=streamer)
                holder["completion_tokens"] = int(output.shape[1] - encoded["input_ids"].shape[1])
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which reports it
            holder["error"] = exc
            ready_event.set()
            if "streamer" in holder:
                holder["streamer"].end()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    ready_event.wait()
    if "streamer" not in holder:
        raise holder["error"]
    yield from _until_stop(holder["streamer"], stop)
    worker.join()  # the streamer ends before generate returns the token count
    counts.update(prompt_tokens=holder["prompt_tokens"], completion_tokens=holder.get("completion_tokens", 0))
    counts["finish_reason"] = "length" if counts["completion_tokens"] >= max_new_tokens else "stop"


def _until_stop(pieces: Iterator[str], stop: list[str] | None) -> Iterator[str]:
    if not stop:
        yield from (p for p in pieces if p)
        return
    pending, hold = "", max(len(s) for s in stop) - 1
    for piece in pieces:
        pending += piece
        cut = min((i for i in (pending.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            if pending[:cut]:
                yield pending[:cut]
            for _ in pieces:  # drain so generation can finish
                pass
            return
        if len(pending) > hold:
            yield pending[: len(pending) - hold]
            pending = pending[len(pending) - hold :]
    if pending:
        yield pending
