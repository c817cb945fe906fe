"""Preference pairs: OpenAI's DPO format, prompt/chosen/rejected and HH-RLHF transcripts, read into one shape.

`{"prompt": [messages], "chosen": {assistant message}, "rejected": {assistant message}}`, plus
`"tools"` and `"parallel_tool_calls"` when the input had them (the prompt may hold tool calls and tool
responses; the two replies are text): DPO-style training compares two replies to one prompt, so the
prompt is what both replies follow, and a pair that cannot say so is rejected with the reason.
"""

import re

from tunelab.data.messages import CHAT_EXTRA_KEYS, Reject, chat_message, chat_messages, check_keys, tool_fields

PREFERENCE_KEYS = {"prompt", "chosen", "rejected"} | CHAT_EXTRA_KEYS
OPENAI_PREFERENCE_KEYS = {"input", "preferred_output", "non_preferred_output"}
# HH-RLHF writes a conversation as one string of "\n\nHuman: ..." and "\n\nAssistant: ..." turns
TRANSCRIPT_TURN = re.compile(r"\n\n(Human|Assistant):")
TRANSCRIPT_START = re.compile(r"\s*(Human|Assistant):")
TRANSCRIPT_ROLES = {"Human": "user", "Assistant": "assistant"}


def normalise_pair(record: dict, strict: bool) -> dict:
    """One pair shape from OpenAI's DPO format, prompt/chosen/rejected, or two full transcripts."""
    if "preferred_output" in record or "non_preferred_output" in record:
        return _openai_preference(record, strict)
    fields = tool_fields(record)
    check_keys(record, PREFERENCE_KEYS, strict)
    chosen_before, chosen = _split_reply(_conversation(record.get("chosen"), "chosen", "assistant"), "chosen")
    rejected_before, rejected = _split_reply(_conversation(record.get("rejected"), "rejected", "assistant"), "rejected")
    if _is_blank(record.get("prompt")):
        prompt = _shared_prompt(chosen_before, rejected_before, fields)
    else:
        prompt = _prompt(_conversation(record["prompt"], "prompt", "user"), fields)
    return _pair(prompt, chosen, rejected, fields)


def _openai_preference(record: dict, strict: bool) -> dict:
    check_keys(record, OPENAI_PREFERENCE_KEYS, strict)
    given = record.get("input")
    if not isinstance(given, dict):
        raise Reject("preference_missing_prompt", "no 'input' object: put the prompt in input.messages")
    fields = tool_fields(given)
    check_keys(given, {"messages"} | CHAT_EXTRA_KEYS, strict)
    prompt = _prompt(_conversation(given.get("messages"), "input.messages", "user"), fields)
    sides = [
        _split_reply(_conversation(record.get(key), key, "assistant"), key)[1]
        for key in ("preferred_output", "non_preferred_output")
    ]
    return _pair(prompt, *sides, fields)


def _is_blank(value: object) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _conversation(value: object, key: str, role: str) -> list:
    """Raw messages of a prompt or a side: a transcript or plain string (one `role` message), one message, or a list."""
    if isinstance(value, str):
        return _transcript(value) or [{"role": role, "content": value}]
    if value is None or isinstance(value, list):
        return value or []
    if isinstance(value, dict):
        return [value]
    raise Reject("wrong_type", f"field {key!r} is a {type(value).__name__}, expected a string or chat messages")


def _transcript(text: str) -> list[dict] | None:
    """HH-RLHF's "\\n\\nHuman: ...\\n\\nAssistant: ..." turns as messages; None when text is not a transcript."""
    if not TRANSCRIPT_START.match(text):
        return None
    _, *turns = TRANSCRIPT_TURN.split("\n\n" + text.lstrip())
    return [
        {"role": TRANSCRIPT_ROLES[speaker], "content": content.strip()}
        for speaker, content in zip(turns[::2], turns[1::2])
    ]


def _split_reply(messages: list, key: str) -> tuple[list, dict]:
    """(the raw messages before a side's reply, the reply checked): the reply is the side's last message."""
    reply = messages[-1] if messages else None
    if not isinstance(reply, dict) or reply.get("role") != "assistant":
        raise Reject("preference_empty_side", f"{key!r} holds no assistant reply; give it as a string or message")
    if "tool_calls" in reply:
        raise Reject(
            "preference_tool_call_reply",
            f"the {key!r} reply calls tools: a pair compares two text replies (tool calls belong in the prompt)",
        )
    if reply.get("content") is None or (isinstance(reply["content"], str) and not reply["content"].strip()):
        raise Reject("preference_empty_side", f"the {key!r} reply is empty; a pair needs two replies to compare")
    checked = chat_message(reply, len(messages) - 1)
    return messages[:-1], {"role": "assistant", "content": checked["content"]}


def _prompt(messages: list, fields: dict) -> list[dict]:
    """Checked prompt messages; HH-style prompts end in an empty "Assistant:" cue, which is dropped."""
    cue = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if cue.get("role") == "assistant" and "tool_calls" not in cue and _is_blank(cue.get("content")):
        messages = messages[:-1]
    if not messages:
        raise Reject(
            "preference_missing_prompt",
            "no prompt: give 'prompt' (a string or messages), or full transcripts in 'chosen' and 'rejected'",
        )
    return chat_messages(messages, fields)


def _shared_prompt(chosen_before: list, rejected_before: list, fields: dict) -> list[dict]:
    """The turns both transcripts share before their last reply: the prompt of the pair."""
    chosen, rejected = ([chat_message(m, i) for i, m in enumerate(turns)] for turns in (chosen_before, rejected_before))
    if _turns(chosen) != _turns(rejected):
        at = next(
            (i for i, (a, b) in enumerate(zip(_turns(chosen), _turns(rejected))) if a != b),
            min(len(chosen), len(rejected)),
        )
        raise Reject(
            "preference_transcripts_diverge",
            f"chosen and rejected differ at turn {at + 1}, before their last reply: a pair shares every turn but the "
            "last; split such records into 'prompt', 'chosen' and 'rejected'",
        )
    return _prompt(chosen_before, fields)


def _turns(messages: list[dict]) -> list[tuple]:
    return [(m["role"], (m["content"] or "").strip(), m.get("tool_calls")) for m in messages]


def _pair(prompt: list[dict], chosen: dict, rejected: dict, fields: dict) -> dict:
    check_sides(chosen["content"], rejected["content"])
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **fields}


def check_sides(chosen: str, rejected: str) -> None:
    """Two replies to compare: a pair with an empty or repeated reply has no preference to learn."""
    if not chosen.strip() or not rejected.strip():
        raise Reject("preference_empty_side", "a reply is empty; a pair needs two replies to compare")
    if chosen.strip() == rejected.strip():
        raise Reject(
            "preference_identical_sides",
            "chosen and rejected are the same reply: the pair teaches nothing; drop it or give a worse rejected reply",
        )
