"""Batch predictions for every record of a data file, one output line per input record, in order.

Records are read with the data pipeline's readers, so every format `tunelab data` reads works here
and a broken line arrives as a reject with its line number. A record that cannot be turned into a
prompt, or whose batch fails, is written as {"line", "error"} instead of stopping the run.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import DataError

CHAT_KEYS = ("messages", "conversations", "instruction", "prompt")


@dataclass
class Item:
    """One input record: its prompt (or text to classify), or why it has none."""

    line: int
    value: object = None
    prompt: str | None = None
    error: str | None = None


@dataclass
class PredictSummary:
    output: Path
    records: int
    errors: int


def record_messages(value: dict) -> list[dict]:
    """Chat messages for chat, ShareGPT, Alpaca and prompt records (as training normalises them)."""
    from tunelab.data.schemas import ROLES, SHAREGPT_ROLES

    if "messages" in value:
        messages = value["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list of {role, content} objects")
        for index, message in enumerate(messages):
            if (
                not isinstance(message, dict)
                or message.get("role") not in ROLES
                or not isinstance(message.get("content"), str)
            ):
                raise ValueError(
                    f"message {index} must be an object with a role (system/user/assistant/tool) and text content"
                )
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    if "conversations" in value:
        turns = value["conversations"]
        if not isinstance(turns, list) or not all(
            isinstance(t, dict) and str(t.get("from", "")).lower() in SHAREGPT_ROLES and isinstance(t.get("value"), str)
            for t in turns
        ):
            raise ValueError("'conversations' must be a list of {from, value} turns")
        return [{"role": SHAREGPT_ROLES[str(t["from"]).lower()], "content": t["value"]} for t in turns]
    if "instruction" in value:
        extra = value.get("input") or ""
        return [{"role": "user", "content": str(value["instruction"]) + (f"\n\n{extra}" if str(extra).strip() else "")}]
    return [{"role": "user", "content": _text(value, "prompt")}]


def _text(value: dict, key: str) -> str:
    text = value.get(key)
    if not isinstance(text, (str, int, float)) or isinstance(text, bool) or not str(text).strip():
        raise ValueError(f"field {key!r} must be non-empty text")
    return str(text)


def model_input(value: object, task: str, tokenizer) -> str:
    """The prompt (or text to classify) for one record; ValueError says why there is none."""
    from tunelab.inference.generate import chat_prompt

    if not isinstance(value, dict):
        raise ValueError(f"record is a JSON {type(value).__name__}, expected an object")
    if task == "classification":
        return _text(value, "text")
    if any(key in value for key in CHAT_KEYS):
        return chat_prompt(tokenizer, record_messages(value))
    for key in ("source", "input", "text"):
        if key in value:
            return _text(value, key)
    raise ValueError(f"record has none of the fields {', '.join(CHAT_KEYS + ('source', 'text'))}")


def read_items(path: Path, task: str, tokenizer, warnings: list[str]) -> list[Item]:
    from tunelab.data.readers import read_records

    items = []
    for record in read_records(Path(path), warnings):
        if record.category:
            items.append(Item(record.line, error=f"{record.category}: {record.message}"))
            continue
        try:
            items.append(Item(record.line, record.value, model_input(record.value, task, tokenizer)))
        except ValueError as exc:
            items.append(Item(record.line, record.value, error=str(exc)))
    return items


def run_batch(loaded, prompts: list[str], *, batch_size: int, max_new_tokens: int, temperature: float) -> list[str]:
    from tunelab.evaluation.predict import classify
    from tunelab.inference.generate import generate

    if loaded.task == "classification":
        return classify(loaded, prompts, batch_size=batch_size)
    return generate(
        loaded.model,
        loaded.tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        batch_size=batch_size,
        encoder_decoder=loaded.encoder_decoder,
    )


def predict_items(loaded, items: list[Item], batch_size: int, **options) -> Iterator[tuple[Item, str | None]]:
    """(item, prediction) in input order; a batch that fails is retried record by record."""
    from tunelab.progress import track

    batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
    for batch in track(batches, "Predicting", total=len(batches)):
        ready = [item for item in batch if item.error is None]
        try:
            outputs = dict(
                zip(map(id, ready), run_batch(loaded, [i.prompt for i in ready], batch_size=batch_size, **options))
            )
        except Exception:  # noqa: BLE001 - one bad record must not cost the batch; find it record by record
            outputs = {id(item): _one(loaded, item, options) for item in ready}
        for item in batch:
            yield item, outputs.get(id(item))


def _one(loaded, item: Item, options: dict) -> str | None:
    try:
        return run_batch(loaded, [item.prompt], batch_size=1, **options)[0]
    except Exception as exc:  # noqa: BLE001 - reported on the record's own output line
        item.error = f"prediction failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return None


def output_line(item: Item, prediction: str | None) -> str:
    row: dict = {"line": item.line}
    if item.value is not None:
        row["input"] = item.value
    row.update({"error": item.error} if item.error else {"prediction": prediction})
    return json.dumps(row, ensure_ascii=False)


def predict_file(
    target: str,
    input_path: Path,
    output_path: Path,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
) -> PredictSummary:
    """Predict every record of `input_path` into JSONL at `output_path` (written aside, then renamed)."""
    from tunelab.inference.engine import load_target
    from tunelab.progress import say, status

    if batch_size < 1:
        raise DataError(f"--batch-size must be at least 1 (got {batch_size})", "pass a positive batch size")
    if not Path(input_path).exists():
        raise DataError(f"input not found: {input_path}", "check the --input path")
    with status(f"Loading {target}"):
        loaded = load_target(str(target))
    warnings: list[str] = []
    items = read_items(input_path, loaded.task, loaded.tokenizer, warnings)
    for warning in warnings:
        say(f"note: {warning}")
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for item, prediction in predict_items(
            loaded, items, batch_size, max_new_tokens=max_new_tokens, temperature=temperature
        ):
            handle.write(output_line(item, prediction) + "\n")
    partial.replace(output_path)
    return PredictSummary(output_path, len(items), sum(1 for item in items if item.error))
