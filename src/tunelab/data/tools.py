"""How tools become text: OpenAI's tool definitions, tool calls and tool responses rendered for a model,
and a model's answer parsed back into OpenAI tool calls. Training, GRPO prompts, evaluation and the
service all go through here, so a model is asked in the format it was trained on.

A model whose chat template renders `tools` and `tool_calls` gets them through that template. Any other
(the bundled SmolLM2 among them) gets tunelab's convention, the one Hermes and Qwen models are trained
on: the function signatures in the system message inside <tools></tools>, each call a JSON object
inside <tool_call></tool_call>, each tool response a user turn inside <tool_response></tool_response>;
the model's own template then renders those plain messages.
"""

import json
import re
import secrets

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
TOOL_CALL_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)
TOOLS_INSTRUCTION = (
    "You can call the functions whose signatures are inside <tools></tools>:\n<tools>\n{signatures}\n</tools>\n"
    "To call a function, answer with a JSON object of its name and arguments inside <tool_call></tool_call>, "
    'one block per call:\n<tool_call>\n{{"name": <function name>, "arguments": <arguments object>}}\n</tool_call>'
)
# a conversation in transformers' tool format, and what a template that renders tools must show of it
PROBE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "probe_lookup",
            "description": "probe tool description",
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}},
        },
    }
]
PROBE = [
    {"role": "user", "content": "probe question"},
    {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_probe",
                "type": "function",
                "function": {"name": "probe_lookup", "arguments": {"key": "probe-key"}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_probe", "content": "probe result"},
]
PROBE_MARKERS = ("probe tool description", "probe-key", "probe result")
_supports_tools: dict[str, bool] = {}  # by template text: rendering the probe for every message would be slow


def template_supports_tools(tokenizer) -> bool:
    """Whether the model's chat template renders tool definitions, tool calls and tool responses. A probe
    conversation decides, not a search of the template: a template can mention tools and drop them. A probe
    that fails, in the stricter sandbox too (data/templates.py), means tunelab's convention is used."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or not template:
        return False
    if template not in _supports_tools:
        _supports_tools[template] = _renders_probe(tokenizer)
    return _supports_tools[template]


def _renders_probe(tokenizer) -> bool:
    from tunelab.data.templates import render_probe

    try:
        text = render_probe(tokenizer, PROBE, tools=PROBE_TOOLS)
    except Exception:  # whatever stops a template on tools (an error, the sandbox, time) rules it out
        return False
    return all(marker in text for marker in PROBE_MARKERS)


def render(
    tokenizer, messages: list[dict], tools: list[dict] | None = None, *, add_generation_prompt: bool = False
) -> str:
    """OpenAI-shaped messages, with the record's tools, as the text the model reads. Without tools or tool
    messages this is exactly the model's own template, so plain chat renders as it always has."""
    if not tools and not any(m.get("tool_calls") or m["role"] == "tool" for m in messages):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    if template_supports_tools(tokenizer):
        return tokenizer.apply_chat_template(
            [_template_message(m) for m in messages],
            tools=tools,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
    return tokenizer.apply_chat_template(
        plain_messages(messages, tools), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def _template_message(message: dict) -> dict:
    """A message as transformers' tool templates take it: arguments as an object (OpenAI sends a JSON
    string, which templates would print quoted), and no null content."""
    out = {key: value for key, value in message.items() if value is not None}
    if "tool_calls" in out:
        out["tool_calls"] = [
            {**call, "function": {**call["function"], "arguments": _arguments(call["function"]["arguments"])}}
            for call in out["tool_calls"]
        ]
    return out


def plain_messages(messages: list[dict], tools: list[dict] | None = None) -> list[dict]:
    """tunelab's tool convention as plain system, user and assistant messages, which any chat template renders:
    the signatures appended to the system message (or in a new one first), calls and responses as text."""
    plain = [_plain_message(m) for m in messages]
    if not tools:
        return plain
    signatures = "\n".join(json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools)
    block = TOOLS_INSTRUCTION.format(signatures=signatures)
    if plain and plain[0]["role"] == "system":
        return [{**plain[0], "content": plain[0]["content"] + "\n\n" + block}, *plain[1:]]
    return [{"role": "system", "content": block}, *plain]


def _plain_message(message: dict) -> dict:
    if message["role"] == "tool":
        return {"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"}
    if message.get("tool_calls"):
        return {**{k: v for k, v in message.items() if k != "tool_calls"}, "content": assistant_text(message)}
    return message


def assistant_text(message: dict) -> str:
    """An assistant message as the convention writes it: its text content, then one block per tool call."""
    calls = [_call_block(call["function"]) for call in message.get("tool_calls") or []]
    return "\n".join(([message["content"]] if message.get("content") else []) + calls)


def _call_block(function: dict) -> str:
    call = {"name": function["name"], "arguments": _arguments(function["arguments"])}
    return f"{TOOL_CALL_OPEN}\n{json.dumps(call, ensure_ascii=False)}\n{TOOL_CALL_CLOSE}"


def _arguments(arguments: object) -> object:
    """A call's arguments as an object; text that does not parse (a caller's mistake) stays text."""
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def forced_call_prefix(name: str) -> str:
    """The text the convention writes before a call's arguments object: an answer started with it is a call
    of `name`, so the service can force one and constrain only the arguments JSON that follows."""
    return f'{TOOL_CALL_OPEN}\n{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": '


def parse_tool_calls(text: str) -> tuple[str | None, list[dict]]:
    """A model's answer as (its text content, None when it only calls; its OpenAI-shaped tool calls). A block
    that is not a JSON object with a name and object arguments stays in the content: nothing is lost."""
    calls, pieces, end = [], [], 0
    for match in TOOL_CALL_BLOCK.finditer(text):
        call = _openai_call(match.group(1))
        if call is not None:
            calls.append(call)
            pieces.append(text[end : match.start()])
            end = match.end()
    content = "".join(pieces + [text[end:]]).strip()
    return content or None, calls


def _openai_call(block: str) -> dict | None:
    try:
        call = json.loads(block)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
        return None
    arguments = call.get("arguments", {})
    if not isinstance(arguments, dict):
        return None
    return {
        "id": f"call_{secrets.token_hex(12)}",
        "type": "function",
        "function": {"name": call["name"], "arguments": json.dumps(arguments, ensure_ascii=False)},
    }
