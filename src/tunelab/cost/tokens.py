"""Exact token counts of a prepared train split: the base model's tokenizer (chat template applied
to chat records), or tiktoken with OpenAI's documented per-message overhead for OpenAI models."""

import json
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import DataError
from tunelab.models.catalogue import ModelSpec

DEFAULT_EXAMPLES = 1000
DEFAULT_TOKENS_PER_EXAMPLE = 512


@dataclass(frozen=True)
class TokenCount:
    examples: int
    tokens: int  # one pass over the train split
    max_tokens: int
    method: str  # exact | approximate | assumed
    note: str


def assumed_count() -> TokenCount:
    tokens = DEFAULT_EXAMPLES * DEFAULT_TOKENS_PER_EXAMPLE
    return TokenCount(
        DEFAULT_EXAMPLES,
        tokens,
        DEFAULT_TOKENS_PER_EXAMPLE,
        "assumed",
        f"no --data given: assumed {DEFAULT_EXAMPLES:,} examples x {DEFAULT_TOKENS_PER_EXAMPLE} tokens",
    )


def read_train_split(data: str | Path) -> list[dict]:
    """Records of a prepared folder's train.jsonl (or of a .jsonl file given directly)."""
    path = Path(data)
    file = path / "train.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise DataError(
            f"no train split at {file}", "pass a folder written by `tunelab data prepare` (it holds train.jsonl)"
        )
    records = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise DataError(f"{file} line {number}: not valid JSON", "re-run `tunelab data prepare`") from None
    if not records:
        raise DataError(f"{file} holds no records", "prepare the data again or pass another folder")
    return records


def load_tokenizer(spec: ModelSpec):
    """The model's own tokenizer (local folder, bundled, or hub cache) and whether it is the model's own."""
    from transformers import AutoTokenizer

    from tunelab.models.bundled import resolve_bundled

    if spec.local_path:
        return AutoTokenizer.from_pretrained(spec.local_path), True
    if spec.bundled:
        return AutoTokenizer.from_pretrained(resolve_bundled(spec.bundled)), True
    try:
        return AutoTokenizer.from_pretrained(spec.name, local_files_only=True), True
    except (OSError, ValueError):
        return AutoTokenizer.from_pretrained(resolve_bundled("smollm2")), False


def record_task(record: dict) -> str:
    if "label" in record:
        return "classification"
    return "seq2seq" if "source" in record and "target" in record else "causal-lm"


def count_with_tokenizer(records: list[dict], tokenizer, max_length: int = 1024) -> list[int]:
    """Tokens per record exactly as the trainer encodes it (training.batches.encode_record: chat
    template, end-of-text token, truncation at max_length); seq2seq counts source and target."""
    from collections import defaultdict

    from tunelab.training.batches import encode_record, ensure_chat_template

    ensure_chat_template(tokenizer)
    counts = []
    for record in records:
        task = record_task(record)
        if "chosen" in record and "rejected" in record:  # a pair is read twice: prompt + each reply
            sides = [
                {"messages": list(record["prompt"]) + [record[side]], "tools": record.get("tools")}
                for side in ("chosen", "rejected")
            ]
            counts.append(sum(len(encode_record(s, tokenizer, task, max_length=max_length).input_ids) for s in sides))
            continue
        if task == "causal-lm" and "messages" not in record and "text" not in record:
            record = {"text": "".join(str(record.get(k, "")) for k in ("prompt", "completion"))}
        example = encode_record(record, tokenizer, task, max_length=max_length, label_ids=defaultdict(int))
        counts.append(len(example.input_ids) + (len(example.labels) if task == "seq2seq" else 0))
    return counts


def count_tokens(data: str | Path, spec: ModelSpec, max_length: int = 1024) -> TokenCount:
    records = read_train_split(data)
    tokenizer, own = load_tokenizer(spec)
    counts = count_with_tokenizer(records, tokenizer, max_length)
    note = f"counted with the {'model' if own else 'bundled SmolLM2 (model tokenizer not available offline)'} tokenizer"
    return TokenCount(len(records), sum(counts), max(counts), "exact" if own else "approximate", note)


def openai_count(data: str | Path, openai: dict) -> TokenCount:
    """tiktoken count plus OpenAI's per-message (3) and per-reply (3) overhead; chars/4 when the encoding is unavailable offline."""
    records = read_train_split(data)
    encode, method = _tiktoken_encoder(openai["encoding"])
    per_message, per_reply = openai["tokens_per_message"], openai["tokens_per_reply"]
    counts = []
    for record in records:
        messages = record.get("messages") or [{"role": "user", "content": "".join(str(v) for v in record.values())}]
        counts.append(
            sum(per_message + encode(str(m.get("role", ""))) + encode(_message_text(m)) for m in messages)
            + encode(json.dumps(record["tools"]) if record.get("tools") else "")
            + per_reply
        )
    note = (
        f"tiktoken {openai['encoding']}"
        if method == "exact"
        else "approximate: 4 characters per token (tiktoken encoding not available offline)"
    )
    return TokenCount(len(records), sum(counts), max(counts), method, note)


def _message_text(message: dict) -> str:
    """What a message bills: its content and, for a tool call, the calls (content is null on those)."""
    calls = json.dumps(message["tool_calls"]) if message.get("tool_calls") else ""
    return str(message.get("content") or "") + calls


def _tiktoken_encoder(encoding: str):
    try:
        import tiktoken

        enc = tiktoken.get_encoding(encoding)
        return (lambda text: len(enc.encode(text, disallowed_special=()))), "exact"
    except Exception:  # no network and no cached encoding file
        return (lambda text: max(1, round(len(text) / 4)) if text else 0), "approximate"
