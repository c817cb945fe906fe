"""Record schemas: detect which one a file uses, check each record, normalise it.

Chat, ShareGPT, Alpaca and prompt/completion all normalise to chat messages, so that training
sees one conversational schema. Problems are raised as `Reject(category, message)`; the chat
categories carry the names OpenAI uses for its fine-tuning file checks, so a user who knows those
reads ours at once.
"""

from collections.abc import Callable

LABEL_ALIASES = ("label", "category", "intent", "class")
ROLES = {"system", "user", "assistant"}
MESSAGE_KEYS = {"role", "content", "name", "weight"}
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
}

# schema -> (task, normalised schema)
SCHEMA_TASK = {
    "chat": ("causal-lm", "chat"),
    "sharegpt": ("causal-lm", "chat"),
    "alpaca": ("causal-lm", "chat"),
    "completion": ("causal-lm", "chat"),
    "text": ("causal-lm", "text"),
    "classification": ("classification", "classification"),
    "seq2seq": ("seq2seq", "seq2seq"),
}


class Reject(Exception):
    """A record that cannot be used: `category` is the machine name, the message says what to fix."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category
        self.message = message


def detect_schema(sample: list[dict]) -> str | None:
    """The schema most of the first records fit, from their keys; None if none fits."""
    votes: dict[str, int] = {}
    for record in sample:
        schema = _schema_of(set(record))
        if schema:
            votes[schema] = votes.get(schema, 0) + 1
    return max(sorted(votes), key=votes.get) if votes else None


def _schema_of(keys: set[str]) -> str | None:
    if "messages" in keys:
        return "chat"
    if "conversations" in keys:
        return "sharegpt"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {"prompt", "completion"} <= keys:
        return "completion"
    if {"source", "target"} <= keys:
        return "seq2seq"
    if "text" in keys and keys & set(LABEL_ALIASES):
        return "classification"
    if "text" in keys:
        return "text"
    return None


def apply_map(record: dict, mapping: dict[str, str]) -> dict:
    """Rename file columns to schema fields ({schema_field: file_column})."""
    if not mapping:
        return record
    renamed = {key: value for key, value in record.items() if key not in mapping.values()}
    for field, column in mapping.items():
        if column in record:
            renamed[field] = record[column]
    return renamed


def normalise(schema: str, value: object, strict_keys: bool) -> dict:
    """The normalised record, or Reject. `strict_keys` rejects unknown top-level keys."""
    if not isinstance(value, dict):
        raise Reject("data_type", f"record is a JSON {type(value).__name__}, expected an object")
    return NORMALISERS[schema](value, strict_keys)


def _check_keys(record: dict, allowed: set[str], strict: bool) -> None:
    unknown = sorted(set(record) - allowed)
    if strict and unknown:
        raise Reject(
            "unknown_key",
            f"unknown key {unknown[0]!r} (expected {sorted(allowed)}); drop it, "
            "rename it with --map, or set data.unknown_keys=ignore",
        )


def _string_field(record: dict, key: str, allow_empty: bool = False) -> str:
    if key not in record or record[key] is None:
        raise Reject("missing_field", f"missing field {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Reject("wrong_type", f"field {key!r} is a {type(value).__name__}, expected a string")
    text = value if isinstance(value, str) else str(value)
    if not allow_empty and not text.strip():
        raise Reject("empty_content", f"field {key!r} is empty")
    return text


def _chat(record: dict, strict: bool) -> dict:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Reject("missing_messages_list", "no non-empty 'messages' list")
    _check_keys(record, {"messages", "tools", "functions", "parallel_tool_calls"}, strict)
    return {"messages": _checked_messages([_chat_message(m, i) for i, m in enumerate(messages)])}


def _chat_message(message: object, index: int) -> dict:
    if not isinstance(message, dict):
        raise Reject("data_type", f"message {index} is a {type(message).__name__}, expected an object")
    missing = [key for key in ("role", "content") if key not in message]
    if missing:
        raise Reject("message_missing_key", f"message {index} has no {missing[0]!r}")
    unknown = sorted(set(message) - MESSAGE_KEYS)
    if unknown:
        raise Reject(
            "message_unrecognized_key",
            f"message {index} has unknown key {unknown[0]!r} (allowed: role, content, name, weight)",
        )
    if message["role"] not in ROLES:
        raise Reject(
            "unrecognized_role", f"message {index} has role {message['role']!r} (allowed: system, user, assistant)"
        )
    return _message(message["role"], message["content"], index, message.get("weight"))


def _message(role: str, content: object, index: int, weight: object = None) -> dict:
    if not isinstance(content, str) or not content.strip():
        raise Reject("missing_content", f"message {index} ({role}) has no text content")
    out = {"role": role, "content": content}
    if weight is not None:
        if weight not in (0, 1) or isinstance(weight, bool) or role != "assistant":
            raise Reject("invalid_weight", f"message {index}: weight must be 0 or 1, on assistant messages only")
        out["weight"] = int(weight)
    return out


def _checked_messages(messages: list[dict]) -> list[dict]:
    if not any(m["role"] == "assistant" for m in messages):
        raise Reject("example_missing_assistant_message", "conversation has no assistant message to learn from")
    return messages


def _sharegpt(record: dict, strict: bool) -> dict:
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise Reject("missing_messages_list", "no non-empty 'conversations' list")
    _check_keys(record, {"conversations", "id", "system"}, strict)
    messages = (
        [{"role": "system", "content": record["system"]}]
        if isinstance(record.get("system"), str) and record["system"].strip()
        else []
    )
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise Reject("data_type", f"turn {index} is a {type(turn).__name__}, expected an object")
        if "from" not in turn or "value" not in turn:
            raise Reject("message_missing_key", f"turn {index} needs 'from' and 'value'")
        role = SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise Reject("unrecognized_role", f"turn {index} is from {turn['from']!r} (allowed: system, human, gpt)")
        messages.append(_message(role, turn["value"], index))
    return {"messages": _checked_messages(messages)}


def _alpaca(record: dict, strict: bool) -> dict:
    _check_keys(record, {"instruction", "input", "output", "system"}, strict)
    instruction = _string_field(record, "instruction")
    extra = _string_field(record, "input", allow_empty=True) if record.get("input") is not None else ""
    prompt = instruction + ("\n\n" + extra if extra.strip() else "")
    return {
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": _string_field(record, "output")},
        ]
    }


def _completion(record: dict, strict: bool) -> dict:
    _check_keys(record, {"prompt", "completion"}, strict)
    return {
        "messages": [
            {"role": "user", "content": _string_field(record, "prompt")},
            {"role": "assistant", "content": _string_field(record, "completion")},
        ]
    }


def _classification(record: dict, strict: bool) -> dict:
    label_key = next((key for key in LABEL_ALIASES if key in record), "label")
    _check_keys(record, {"text", label_key}, strict)
    return {"text": _string_field(record, "text"), "label": _string_field(record, label_key)}


def _seq2seq(record: dict, strict: bool) -> dict:
    _check_keys(record, {"source", "target"}, strict)
    return {"source": _string_field(record, "source"), "target": _string_field(record, "target")}


def _text(record: dict, strict: bool) -> dict:
    _check_keys(record, {"text"}, strict)
    return {"text": _string_field(record, "text")}


NORMALISERS: dict[str, Callable[[dict, bool], dict]] = {
    "chat": _chat,
    "sharegpt": _sharegpt,
    "alpaca": _alpaca,
    "completion": _completion,
    "classification": _classification,
    "seq2seq": _seq2seq,
    "text": _text,
}


def record_texts(record: dict) -> list[str]:
    """The text fields of a normalised record, in order (for cleaning, tokens and dedup)."""
    if "messages" in record:
        return [m["content"] for m in record["messages"]]
    return [record[key] for key in ("text", "source", "target") if key in record]


def with_texts(record: dict, texts: list[str]) -> dict:
    """A copy of a normalised record with its text fields replaced (inverse of record_texts)."""
    if "messages" in record:
        return {"messages": [{**m, "content": t} for m, t in zip(record["messages"], texts)]}
    keys = [key for key in ("text", "source", "target") if key in record]
    return {**record, **dict(zip(keys, texts))}
