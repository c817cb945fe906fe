"""Checks of single chat messages and record keys, shared by every schema that holds messages.

The categories carry the names OpenAI uses for its fine-tuning file checks, so a user who knows
those reads ours at once.
"""

ROLES = {"system", "user", "assistant"}
MESSAGE_KEYS = {"role", "content", "name", "weight"}
CHAT_EXTRA_KEYS = {"tools", "functions", "parallel_tool_calls"}


class Reject(Exception):
    """A record that cannot be used: `category` is the machine name, the message says what to fix."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category
        self.message = message


def check_keys(record: dict, allowed: set[str], strict: bool) -> None:
    unknown = sorted(set(record) - allowed)
    if strict and unknown:
        raise Reject(
            "unknown_key",
            f"unknown key {unknown[0]!r} (expected {sorted(allowed)}); drop it, "
            "rename it with --map, or set data.unknown_keys=ignore",
        )


def chat_message(message: object, index: int) -> dict:
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
    return text_message(message["role"], message["content"], index, message.get("weight"))


def text_message(role: str, content: object, index: int, weight: object = None) -> dict:
    if not isinstance(content, str) or not content.strip():
        raise Reject("missing_content", f"message {index} ({role}) has no text content")
    out = {"role": role, "content": content}
    if weight is not None:
        if weight not in (0, 1) or isinstance(weight, bool) or role != "assistant":
            raise Reject("invalid_weight", f"message {index}: weight must be 0 or 1, on assistant messages only")
        out["weight"] = int(weight)
    return out


def tools_of(record: dict) -> list | None:
    tools = record.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise Reject("wrong_type", f"field 'tools' is a {type(tools).__name__}, expected a list of tool definitions")
    return tools or None
