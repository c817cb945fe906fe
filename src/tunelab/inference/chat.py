"""A chat session over a loaded model: history, the model's chat template, streamed replies.

Each reply is generated in a background thread that feeds a TextIteratorStreamer, so the caller
prints tokens as they arrive; the prompt is always the whole history through the chat template,
exactly as `generate` formats prompts for evaluation and predict.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from tunelab.errors import ModelError


@dataclass
class ChatSession:
    loaded: object
    system: str | None = None
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 256
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.loaded.task == "classification":
            raise ModelError(
                f"{self.loaded.name} is a classification model and cannot chat",
                "use `tunelab predict` to label texts with it",
            )
        self.reset()

    def reset(self) -> None:
        self.history = [{"role": "system", "content": self.system}] if self.system else []

    def stream(self, user_text: str) -> Iterator[str]:
        """The reply to `user_text`, piece by piece; the full reply joins the history at the end."""
        self.history.append({"role": "user", "content": user_text})
        pieces = []
        try:
            for piece in stream_reply(
                self.loaded,
                self.history,
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
            ):
                pieces.append(piece)
                yield piece
        except BaseException:
            self.history.pop()
            raise
        self.history.append({"role": "assistant", "content": "".join(pieces).strip()})

    def reply(self, user_text: str) -> str:
        return "".join(self.stream(user_text)).strip()


def stream_reply(
    loaded, messages: list[dict], *, max_new_tokens: int, temperature: float, top_p: float
) -> Iterator[str]:
    import threading

    import torch
    from transformers import TextIteratorStreamer

    from tunelab.inference.generate import chat_prompt, generation_kwargs

    tokenizer, model = loaded.tokenizer, loaded.model
    prompt = messages[-1]["content"] if loaded.encoder_decoder else chat_prompt(tokenizer, messages)
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=loaded.encoder_decoder).to(model.device)
    streamer = TextIteratorStreamer(
        tokenizer, skip_prompt=not loaded.encoder_decoder, skip_special_tokens=True, timeout=600
    )
    kwargs = generation_kwargs(tokenizer, max_new_tokens, temperature, top_p)
    failure: list[BaseException] = []

    def run():
        try:
            with torch.no_grad():
                model.generate(**encoded, **kwargs, eos_token_id=stop_ids(model, tokenizer), streamer=streamer)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if failure:
        raise failure[0]


def stop_ids(model, tokenizer) -> list[int]:
    """End-of-turn ids: the model's eos plus the chat template's turn end (e.g. <|im_end|>)."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = list(configured) if isinstance(configured, list) else [configured] if configured is not None else []
    vocab = tokenizer.get_vocab()
    for token in (tokenizer.eos_token, "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        if token and token in vocab and vocab[token] not in ids:
            ids.append(vocab[token])
    return ids
