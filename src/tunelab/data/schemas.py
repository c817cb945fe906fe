"""Record schemas: detect which one a file uses, check each record, normalise it.

Chat, ShareGPT, Alpaca and prompt/completion all normalise to chat messages, so that training
sees one conversational schema. Preference pairs (OpenAI's DPO format, prompt/chosen/rejected,
HH-RLHF transcripts) all normalise to one pair shape, and reinforcement prompts keep their extra
fields for the graders. Problems are raised as `Reject(category, message)`; the chat categories
carry the names OpenAI uses for its fine-tuning file checks, so a user who knows those reads ours
at once.
"""

import json
from collections.abc import Callable

from tunelab.data.messages import (
    CHAT_EXTRA_KEYS,
    Reject,
    chat_messages,
    check_arguments,
    check_keys,
    text_message,
    tool_fields,
)
from tunelab.data.messages import ROLES as ROLES  # re-exported: inference reads it from here
from tunelab.data.preference import check_sides, normalise_pair

LABEL_ALIASES = ("label", "category", "intent", "class")
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
    "preference": ("causal-lm", "preference"),
    "reinforcement": ("causal-lm", "reinforcement"),
}


def detect_schema(sample: list[dict]) -> str | None:
    """The schema most of the first records fit, from their keys (and whether chat messages hold a reply); None if none fits."""
    votes: dict[str, int] = {}
    for record in sample:
        schema = _schema_of(record)
        if schema:
            votes[schema] = votes.get(schema, 0) + 1
    return max(sorted(votes), key=votes.get) if votes else None


def _schema_of(record: dict) -> str | None:
    """The schema one record's keys suggest; chat messages without any reply are a reinforcement prompt."""
    keys = set(record)
    if {"chosen", "rejected"} <= keys or {"preferred_output", "non_preferred_output"} <= keys:
        return "preference"
    if "messages" in keys:
        return "chat" if _has_reply(record["messages"]) else "reinforcement"
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


def _has_reply(messages: object) -> bool:
    """Whether raw messages hold an assistant reply; malformed ones count as chat, whose checks say what is wrong."""
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return True
    return any(m.get("role") == "assistant" for m in messages)


def _chat(record: dict, strict: bool) -> dict:
    """Chat messages, with the record's tools and parallel_tool_calls kept beside them when it has them."""
    messages = _messages_value(record)
    fields = tool_fields(record)
    check_keys(record, {"messages"} | CHAT_EXTRA_KEYS, strict)
    return {"messages": _checked_messages(chat_messages(messages, fields)), **fields}


def _messages_value(record: dict) -> list:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Reject("missing_messages_list", "no non-empty 'messages' list")
    return messages


def _checked_messages(messages: list[dict]) -> list[dict]:
    if not any(m["role"] == "assistant" for m in messages):
        raise Reject("example_missing_assistant_message", "conversation has no assistant message to learn from")
    return messages


def _sharegpt(record: dict, strict: bool) -> dict:
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise Reject("missing_messages_list", "no non-empty 'conversations' list")
    check_keys(record, {"conversations", "id", "system"}, strict)
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
        messages.append(text_message(role, turn["value"], index))
    return {"messages": _checked_messages(messages)}


def _alpaca(record: dict, strict: bool) -> dict:
    check_keys(record, {"instruction", "input", "output", "system"}, strict)
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
    check_keys(record, {"prompt", "completion"}, strict)
    return {
        "messages": [
            {"role": "user", "content": _string_field(record, "prompt")},
            {"role": "assistant", "content": _string_field(record, "completion")},
        ]
    }


def _classification(record: dict, strict: bool) -> dict:
    label_key = next((key for key in LABEL_ALIASES if key in record), "label")
    check_keys(record, {"text", label_key}, strict)
    return {"text": _string_field(record, "text"), "label": _string_field(record, label_key)}


def _seq2seq(record: dict, strict: bool) -> dict:
    check_keys(record, {"source", "target"}, strict)
    return {"source": _string_field(record, "source"), "target": _string_field(record, "target")}


def _text(record: dict, strict: bool) -> dict:
    check_keys(record, {"text"}, strict)
    return {"text": _string_field(record, "text")}


def _reinforcement(record: dict, strict: bool) -> dict:
    """A prompt for a model to answer while graders score it: every field beside the messages is data
    the graders read as {{item.FIELD}}, so none is an unknown key."""
    messages = chat_messages(_messages_value(record), tool_fields(record))
    if messages[-1]["role"] != "user":
        raise Reject(
            "reinforcement_last_message_not_user",
            f"the last message is from {messages[-1]['role']!r}: a reinforcement prompt ends with the user's turn "
            "for the model to answer (drop the reply, or put reply-bearing records in a chat file)",
        )
    return {**{key: value for key, value in record.items() if key != "messages"}, "messages": messages}


NORMALISERS: dict[str, Callable[[dict, bool], dict]] = {
    "chat": _chat,
    "sharegpt": _sharegpt,
    "alpaca": _alpaca,
    "completion": _completion,
    "classification": _classification,
    "seq2seq": _seq2seq,
    "text": _text,
    "preference": normalise_pair,
    "reinforcement": _reinforcement,
}


def record_texts(record: dict) -> list[str]:
    """The text fields of a normalised record, in order (for cleaning, tokens and dedup)."""
    if "chosen" in record:
        return _texts(record["prompt"]) + [record["chosen"]["content"], record["rejected"]["content"]]
    if "messages" in record:
        return _texts(record["messages"])
    return [record[key] for key in ("text", "source", "target") if key in record]


def _texts(messages: list[dict]) -> list[str]:
    """Each message's text content, then its tool calls' arguments: JSON the model writes, so cleaned,
    counted and compared like any text (a tool-call message may have no content)."""
    texts = []
    for message in messages:
        if message.get("content") is not None:
            texts.append(message["content"])
        texts += [call["function"]["arguments"] for call in message.get("tool_calls", [])]
    return texts


def with_texts(record: dict, texts: list[str]) -> dict:
    """A copy of a normalised record with its text fields replaced (inverse of record_texts)."""
    if "chosen" in record:
        n = len(_texts(record["prompt"]))
        return {
            **record,
            "prompt": _with_texts(record["prompt"], texts[:n]),
            "chosen": {**record["chosen"], "content": texts[n]},
            "rejected": {**record["rejected"], "content": texts[n + 1]},
        }
    if "messages" in record:
        return {**record, "messages": _with_texts(record["messages"], texts)}
    keys = [key for key in ("text", "source", "target") if key in record]
    return {**record, **dict(zip(keys, texts))}


def _with_texts(messages: list[dict], texts: list[str]) -> list[dict]:
    """Messages refilled from texts in _texts' order."""
    refill = iter(texts)
    return [_refilled(m, refill) for m in messages]


def _refilled(message: dict, refill) -> dict:
    out = dict(message)
    if message.get("content") is not None:
        out["content"] = next(refill)
    if "tool_calls" in message:
        out["tool_calls"] = [
            {**call, "function": {**call["function"], "arguments": next(refill)}} for call in message["tool_calls"]
        ]
    return out


def check_cleaned(record: dict) -> None:
    """Reject what cleaning can leave unusable: an emptied text field, a tool call whose arguments stopped
    being a JSON object, or a pair whose replies became the same."""
    if "chosen" in record:
        check_sides(record["chosen"]["content"], record["rejected"]["content"])
    if not all(record_texts(record)):
        raise Reject(
            "missing_content" if "messages" in record or "prompt" in record else "empty_content",
            "a text field is empty after cleaning (it held only whitespace, control characters or special tokens)",
        )
    check_arguments(record.get("messages") or record.get("prompt") or [])


def token_texts(record: dict) -> list[str]:
    """The texts whose tokens are counted: record_texts, then the tool definitions the model reads with the
    prompt (counted, but never cleaned, cut or compared for duplicates)."""
    tools = record.get("tools")
    return record_texts(record) + ([json.dumps(tools, ensure_ascii=False)] if tools else [])


def sequences(record: dict) -> list[list[int]]:
    """Indices into token_texts of each sequence a model reads, which max_tokens limits: the whole record,
    or for a pair the prompt with its chosen reply and the prompt with its rejected one. The tool definitions
    come first, so the last index of each is the text truncation may cut."""
    count = len(record_texts(record))
    tools = [count] if record.get("tools") else []
    if "chosen" in record:
        prompt = tools + list(range(count - 2))
        return [prompt + [count - 2], prompt + [count - 1]]
    return [tools + list(range(count))]


def can_truncate(record: dict) -> bool:
    """Whether max_tokens may cut the record's last text: not for a reinforcement prompt, whose last text is the
    question itself (the model writes the answer), nor when it is a tool call's arguments (cut JSON calls nothing)."""
    if "messages" not in record:
        return True
    messages = record["messages"]
    return any(m["role"] == "assistant" for m in messages) and "tool_calls" not in messages[-1]


def dedup_parts(record: dict) -> tuple[str, str | None]:
    """(the input text, the answer text or None): splits keep records with similar inputs together, and a
    near duplicate needs both parts similar, so that pairs sharing a prompt stay distinct examples."""
    if "chosen" in record:
        prompt = "\n".join(_texts(record["prompt"]))
        return prompt, record["chosen"]["content"] + "\n" + record["rejected"]["content"]
    return "\n".join(record_texts(record)), None
