"""Checks of single chat messages and record keys, shared by every schema that holds messages.

The categories carry the names OpenAI uses for its fine-tuning file checks, so a user who knows
those reads ours at once. Tool calling follows OpenAI's format: assistant `tool_calls` whose
arguments are a string holding a JSON object, `tool` messages answering an earlier call by its id,
and record-level `tools` and `parallel_tool_calls`; the deprecated `functions`/`function_call`
format is refused with its own category rather than read half-way.
"""

import json

ROLES = {"system", "user", "assistant", "tool"}
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id"}
CHAT_EXTRA_KEYS = {"tools", "parallel_tool_calls"}
LEGACY_HINT = (
    "OpenAI's deprecated function-calling format: give 'tools' instead of 'functions', assistant 'tool_calls' "
    "instead of 'function_call', and role 'tool' with a 'tool_call_id' instead of role 'function'"
)


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


def chat_messages(messages: list, tool_fields: dict) -> list[dict]:
    """Checked messages of one conversation, each tool call naming one of the record's tools (when it lists
    them) and each tool response answering a call made before it."""
    checked = [chat_message(m, i) for i, m in enumerate(messages)]
    names = {tool["function"]["name"] for tool in tool_fields.get("tools", [])}
    called: set[str] = set()
    for index, message in enumerate(checked):
        calls = message.get("tool_calls", [])
        if len(calls) > 1 and tool_fields.get("parallel_tool_calls") is False:
            raise Reject(
                "parallel_tool_calls", f"message {index} makes {len(calls)} calls, but parallel_tool_calls is false"
            )
        for call in calls:
            if names and call["function"]["name"] not in names:
                raise Reject(
                    "unknown_tool",
                    f"message {index} calls {call['function']['name']!r}, which is not in the record's tools {sorted(names)}",
                )
            called.add(call["id"])
        if message["role"] == "tool" and message["tool_call_id"] not in called:
            raise Reject(
                "unknown_tool_call_id",
                f"message {index} answers tool call {message['tool_call_id']!r}, which no earlier assistant message made",
            )
    return checked


def chat_message(message: object, index: int) -> dict:
    """One checked message: text, an assistant's tool calls (its text then optional), or a tool's response."""
    if not isinstance(message, dict):
        raise Reject("data_type", f"message {index} is a {type(message).__name__}, expected an object")
    _check_message_keys(message, index)
    if message["role"] == "tool":
        return _tool_message(message, index)
    if "tool_calls" in message:
        return _calling_message(message, index)
    return text_message(message["role"], message["content"], index, message.get("weight"))


def _check_message_keys(message: dict, index: int) -> None:
    role = message.get("role")
    if "function_call" in message or role == "function":
        raise Reject("legacy_function_calling", f"message {index} uses {LEGACY_HINT}")
    needed = ("role",) if role == "assistant" and "tool_calls" in message else ("role", "content")
    missing = [key for key in needed if key not in message]
    if missing:
        raise Reject("message_missing_key", f"message {index} has no {missing[0]!r}")
    unknown = sorted(set(message) - MESSAGE_KEYS)
    if unknown:
        raise Reject(
            "message_unrecognized_key",
            f"message {index} has unknown key {unknown[0]!r} (allowed: {', '.join(sorted(MESSAGE_KEYS))})",
        )
    if role not in ROLES:
        raise Reject("unrecognized_role", f"message {index} has role {role!r} (allowed: system, user, assistant, tool)")
    if "tool_calls" in message and role != "assistant":
        raise Reject(
            "message_unrecognized_key", f"message {index} ({role}) has 'tool_calls': only assistants call tools"
        )
    if "tool_call_id" in message and role != "tool":
        raise Reject(
            "message_unrecognized_key", f"message {index} ({role}) has 'tool_call_id': only tools answer calls"
        )


def text_message(role: str, content: object, index: int, weight: object = None) -> dict:
    if not isinstance(content, str) or not content.strip():
        raise Reject("missing_content", f"message {index} ({role}) has no text content")
    return {"role": role, "content": content, **_weight(role, weight, index)}


def _weight(role: str, weight: object, index: int) -> dict:
    if weight is None:
        return {}
    if weight not in (0, 1) or isinstance(weight, bool) or role != "assistant":
        raise Reject("invalid_weight", f"message {index}: weight must be 0 or 1, on assistant messages only")
    return {"weight": int(weight)}


def _tool_message(message: dict, index: int) -> dict:
    call_id = message.get("tool_call_id")
    if call_id is None:
        raise Reject("message_missing_key", f"message {index} (tool) has no 'tool_call_id' naming the call it answers")
    if not isinstance(call_id, str) or not call_id.strip():
        raise Reject("invalid_tool_call_id", f"message {index} (tool): 'tool_call_id' must be a non-empty string")
    return {**text_message("tool", message["content"], index, message.get("weight")), "tool_call_id": call_id}


def _calling_message(message: dict, index: int) -> dict:
    """An assistant turn that calls tools: OpenAI lets its content be absent, null or empty, all kept as None."""
    content = message.get("content")
    text = None if content is None or content == "" else text_message("assistant", content, index)["content"]
    calls = message["tool_calls"]
    if not isinstance(calls, list) or not calls:
        raise Reject("invalid_tool_calls", f"message {index}: 'tool_calls' must be a non-empty list of calls")
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [_tool_call(call, f"message {index}, tool call {n}") for n, call in enumerate(calls)],
        **_weight("assistant", message.get("weight"), index),
    }


def _tool_call(call: object, where: str) -> dict:
    if not isinstance(call, dict):
        raise Reject("invalid_tool_call", f"{where} is a {type(call).__name__}, expected an object")
    function = call.get("function")
    if not isinstance(call.get("id"), str) or not call["id"].strip():
        raise Reject("invalid_tool_call", f"{where} has no string 'id'")
    if call.get("type") != "function":
        raise Reject("invalid_tool_call", f"{where} has type {call.get('type')!r}, expected 'function'")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"].strip():
        raise Reject("invalid_tool_call", f"{where} has no 'function' object with a string 'name'")
    arguments = function.get("arguments")
    if not isinstance(arguments, str) or not isinstance(_json_or_none(arguments), dict):
        raise Reject(
            "invalid_tool_call_arguments",
            f"{where}: function.arguments must be a string holding a JSON object, such as "
            + json.dumps(json.dumps({"order_id": "5"})),
        )
    return {"id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": arguments}}


def check_arguments(messages: list[dict]) -> None:
    """Each tool call's arguments still a JSON object: cleaning edits them as text (PII, special tokens)."""
    for index, message in enumerate(messages):
        for n, call in enumerate(message.get("tool_calls", [])):
            _tool_call(call, f"message {index}, tool call {n}")


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def tool_fields(record: dict) -> dict:
    """The record's checked `tools` and `parallel_tool_calls`, only those it has, to keep beside its messages."""
    if "functions" in record:
        raise Reject("legacy_function_calling", f"the record uses {LEGACY_HINT}")
    fields = {}
    if record.get("tools") is not None and _tool_definitions(record["tools"]):
        fields["tools"] = record["tools"]
    if record.get("parallel_tool_calls") is not None:
        if not isinstance(record["parallel_tool_calls"], bool):
            raise Reject("wrong_type", "field 'parallel_tool_calls' must be true or false")
        fields["parallel_tool_calls"] = record["parallel_tool_calls"]
    return fields


def _tool_definitions(tools: object) -> list[dict]:
    if not isinstance(tools, list):
        raise Reject("wrong_type", f"field 'tools' is a {type(tools).__name__}, expected a list of tool definitions")
    for n, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise Reject("invalid_tools", f'tool {n} is not {{"type": "function", "function": {{"name": ...}}}}')
        if not isinstance(function.get("name"), str) or not function["name"].strip():
            raise Reject("invalid_tools", f"tool {n} has no string function name")
        if not isinstance(function.get("parameters", {}), dict):
            raise Reject("invalid_tools", f"tool {n} ({function['name']}): 'parameters' must be a JSON schema object")
    return tools
