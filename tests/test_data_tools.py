"""OpenAI's function-calling format: validation, the tool rendering convention, loss masks and parsing."""

import copy
import json
import re
from types import SimpleNamespace

import pytest
from tiny_models import smollm2_tokenizer_dir

from tunelab.data import tools
from tunelab.data.config import DataConfig
from tunelab.data.messages import Reject
from tunelab.data.prepare import prepare_dataset
from tunelab.data.schemas import (
    can_truncate,
    dedup_parts,
    detect_schema,
    normalise,
    record_texts,
    sequences,
    token_texts,
    with_texts,
)
from tunelab.inference.generate import chat_prompt
from tunelab.training.batches import IGNORE, encode_chat, encode_record

EXAMPLE = {
    "messages": [
        {"role": "user", "content": "Where is order 3?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_3",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"order_id": "3"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_3", "content": '{"status": "shipped"}'},
        {"role": "assistant", "content": "Order 3 has shipped."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Look up an order",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
        }
    ],
    "parallel_tool_calls": False,
}
# a chat template that renders tools and tool calls (arguments as objects, as transformers' tool templates do)
TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTOOLS:{% for t in tools %} {{ t.function.name }}={{ t.function.description }}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content %}{{ m.content }}{% endif %}"
    "{% for call in m.tool_calls or [] %}CALL {{ call.function.name }} {{ call.function.arguments | tojson }}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())


@pytest.fixture
def tool_tokenizer():
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    loaded.chat_template = TOOL_TEMPLATE
    return loaded


def example() -> dict:
    return copy.deepcopy(EXAMPLE)


def checked(record: dict) -> dict:
    return normalise(detect_schema([record]), record, strict_keys=True)


def set_in(path: tuple, value):
    """A change to the example: the value at `path` replaced (or the key deleted when value is DELETE)."""

    def change(record: dict) -> dict:
        *parents, last = path
        target = record
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
        return record

    return change


DELETE = object()
CALL = ("messages", 1, "tool_calls", 0)
TWO_CALLS = [EXAMPLE["messages"][1]["tool_calls"][0], {**EXAMPLE["messages"][1]["tool_calls"][0], "id": "call_4"}]
BAD = {
    "unparseable arguments": (
        set_in((*CALL, "function", "arguments"), '{"order_id": 3'),
        "invalid_tool_call_arguments",
        "message 1",
    ),
    "arguments not an object": (
        set_in((*CALL, "function", "arguments"), "[3]"),
        "invalid_tool_call_arguments",
        "message 1",
    ),
    "arguments not a string": (
        set_in((*CALL, "function", "arguments"), {"order_id": "3"}),
        "invalid_tool_call_arguments",
        "message 1",
    ),
    "unknown tool_call_id": (set_in(("messages", 2, "tool_call_id"), "call_9"), "unknown_tool_call_id", "message 2"),
    "tool without tool_call_id": (set_in(("messages", 2, "tool_call_id"), DELETE), "message_missing_key", "message 2"),
    "tool content not a string": (
        set_in(("messages", 2, "content"), {"status": "shipped"}),
        "missing_content",
        "message 2",
    ),
    "tool_calls not a list": (set_in(("messages", 1, "tool_calls"), TWO_CALLS[0]), "invalid_tool_calls", "message 1"),
    "call without id": (set_in((*CALL, "id"), DELETE), "invalid_tool_call", "message 1"),
    "call of another type": (set_in((*CALL, "type"), "code"), "invalid_tool_call", "message 1"),
    "call without a name": (set_in((*CALL, "function", "name"), DELETE), "invalid_tool_call", "message 1"),
    "call of an undefined tool": (set_in((*CALL, "function", "name"), "cancel_order"), "unknown_tool", "message 1"),
    "two calls, parallel off": (set_in(("messages", 1, "tool_calls"), TWO_CALLS), "parallel_tool_calls", "message 1"),
    "tool_calls on a user": (
        set_in(("messages", 0, "tool_calls"), TWO_CALLS[:1]),
        "message_unrecognized_key",
        "message 0",
    ),
    "tools not a list": (set_in(("tools",), {"get_order": {}}), "wrong_type", "'tools'"),
    "tool without a name": (set_in(("tools", 0, "function", "name"), DELETE), "invalid_tools", "tool 0"),
    "parallel not a bool": (set_in(("parallel_tool_calls",), "no"), "wrong_type", "parallel_tool_calls"),
    "legacy functions": (set_in(("functions",), [{"name": "get_order"}]), "legacy_function_calling", "record"),
    "legacy function_call": (
        set_in(("messages", 1, "function_call"), {"name": "get_order"}),
        "legacy_function_calling",
        "message 1",
    ),
    "legacy function role": (set_in(("messages", 2, "role"), "function"), "legacy_function_calling", "message 2"),
}


def test_the_example_validates_and_keeps_its_tools():
    record = checked(example())
    assert detect_schema([EXAMPLE]) == "chat"
    assert record["tools"] == EXAMPLE["tools"] and record["parallel_tool_calls"] is False
    call_message, tool_message = record["messages"][1:3]
    assert call_message == {"role": "assistant", "content": None, "tool_calls": EXAMPLE["messages"][1]["tool_calls"]}
    assert tool_message == {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_3"}
    plain = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    assert checked(plain) == plain  # a record without tools keeps no tool keys


def test_weights_work_on_tool_call_messages(tokenizer):
    record = example()
    record["messages"][1]["weight"] = 0
    normalised = checked(record)
    assert normalised["messages"][1]["weight"] == 0
    trained = trained_text(tokenizer, normalised)
    assert "<tool_call>" not in trained and "Order 3 has shipped." in trained


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tool_records_are_rejected_with_category_and_place(case):
    change, category, where = BAD[case]
    with pytest.raises(Reject) as rejected:
        checked(change(example()))
    assert rejected.value.category == category and where in rejected.value.message, rejected.value.message


def test_prepare_reconciles_tool_records(run_cli, tmp_path):
    good = [json.dumps(order(i)) for i in range(120)]
    bad = [json.dumps(change(example())) for change, _, _ in BAD.values()]
    source = tmp_path / "tools.jsonl"
    source.write_text("\n".join(good + bad + good[:5]) + "\n", encoding="utf-8")
    code, output = run_cli("data", "prepare", source, "--out", tmp_path / "out", "--model", "whitespace", "--json")
    assert code == 0, output
    counts = json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]
    assert (
        counts["input"] == counts["kept"] + counts["rejected"] + counts["duplicates_exact"] + counts["duplicates_near"]
    )
    assert counts["input"] == 120 + len(BAD) + 5 and counts["rejected"] == len(BAD) and counts["duplicates_exact"] == 5
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["category"] for r in rejects if r["category"] != "duplicate_exact") == sorted(
        category for _, category, _ in BAD.values()
    )
    kept = json.loads((tmp_path / "out" / "train.jsonl").read_text().splitlines()[0])
    assert kept["tools"] == EXAMPLE["tools"] and kept["messages"][1]["tool_calls"][0]["type"] == "function"


def order(i: int) -> dict:
    """A distinct tool-calling record per i (distinct enough not to be near duplicates of each other)."""
    status = ["shipped", "delayed", "lost in transit", "waiting at the depot"][i % 4]
    record = example()
    record["messages"][0]["content"] = f"Could you tell me where order {i} is? I bought {i * 7 % 31} lamps on day {i}."
    record["messages"][1]["tool_calls"][0]["function"]["arguments"] = json.dumps({"order_id": str(i)})
    record["messages"][2]["content"] = json.dumps({"status": status, "eta_days": i % 9, "depot": f"d{i * 13 % 97}"})
    record["messages"][3]["content"] = (
        f"Order {i} is {status}; it should reach you in {i % 9} days from d{i * 13 % 97}."
    )
    return record


def test_texts_cleaning_and_dedup_read_tool_arguments():
    record = checked(example())
    texts = record_texts(record)
    assert texts == ["Where is order 3?", '{"order_id": "3"}', '{"status": "shipped"}', "Order 3 has shipped."]
    assert with_texts(record, texts) == record
    assert with_texts(record, [t.replace("3", "4") for t in texts])["messages"][1]["tool_calls"][0]["function"] == {
        "name": "get_order",
        "arguments": '{"order_id": "4"}',
    }
    assert '{"order_id": "3"}' in dedup_parts(record)[0]
    assert token_texts(record)[-1] == json.dumps(EXAMPLE["tools"]) and sequences(record) == [[4, 0, 1, 2, 3]]
    ends_in_call = {**record, "messages": record["messages"][:2]}
    assert can_truncate(record) and not can_truncate(ends_in_call)


def test_pii_in_arguments_is_redacted_and_stays_json(tmp_path):
    record = example()
    record["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{"email": "ann@example.com"}'
    source = tmp_path / "pii.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    prepare_dataset([source], tmp_path / "out", DataConfig(tokenizer="whitespace", redact_pii=True, force=True))
    kept = [
        json.loads(line)
        for name in ("train", "validation", "test")
        for line in open(tmp_path / "out" / f"{name}.jsonl")
    ]
    assert json.loads(kept[0]["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {"email": "[EMAIL]"}


def test_render_without_tools_is_the_models_own_template(tokenizer):
    conversations = [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    ]
    for messages in conversations:
        for prompt in (False, True):
            expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
            assert tools.render(tokenizer, messages, add_generation_prompt=prompt) == expected


def test_fallback_renders_tools_calls_and_responses_in_order(tokenizer):
    record = checked(example())
    assert not tools.template_supports_tools(tokenizer)  # SmolLM2's template has no tool support
    text = tools.render(tokenizer, record["messages"], record["tools"])
    marks = ["<tools>\n", '{"name": "get_order", "description"', "\n</tools>\n", "Where is order 3?"]
    marks += ['<tool_call>\n{"name": "get_order", "arguments": {"order_id": "3"}}\n</tool_call>']
    marks += ['<|im_start|>user\n<tool_response>\n{"status": "shipped"}\n</tool_response>', "Order 3 has shipped."]
    assert [text.index(mark) for mark in marks] == sorted(text.index(mark) for mark in marks)
    assert text.startswith("<|im_start|>system\n") and text.count("<|im_start|>system") == 1
    with_system = [{"role": "system", "content": "You help with orders."}, *record["messages"]]
    rendered = tools.render(tokenizer, with_system, record["tools"])
    assert rendered.startswith("<|im_start|>system\nYou help with orders.\n\n") and "<tools>" in rendered


def trained_text(tokenizer, record: dict) -> str:
    encoded = encode_record(record, tokenizer, "causal-lm", max_length=1024)
    return tokenizer.decode([token for token, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE])


def test_labels_cover_tool_calls_and_answers_not_responses(tokenizer):
    trained = trained_text(tokenizer, checked(example()))
    assert '{"name": "get_order", "arguments": {"order_id": "3"}}' in trained and "Order 3 has shipped." in trained
    assert "<tool_response>" not in trained and '"status"' not in trained and "Where is order" not in trained
    assert "<tools>" not in trained


def test_parse_round_trips_the_fallback_and_keeps_malformed_text():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "3"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "track", "arguments": '{"n": [1, 2], "é": null}'}},
    ]
    written = tools.assistant_text({"role": "assistant", "content": "Checking both.", "tool_calls": calls})
    content, parsed = tools.parse_tool_calls(written)
    assert content == "Checking both." and [p["function"]["name"] for p in parsed] == ["get_order", "track"]
    assert [json.loads(p["function"]["arguments"]) for p in parsed] == [{"order_id": "3"}, {"n": [1, 2], "é": None}]
    assert all(re.fullmatch(r"call_[0-9a-f]+", p["id"]) and p["type"] == "function" for p in parsed)
    assert tools.parse_tool_calls(tools.assistant_text({"role": "assistant", "tool_calls": calls[:1]}))[0] is None
    for malformed in (
        "<tool_call>\n{not json}\n</tool_call>",
        '<tool_call>\n{"arguments": {}}\n</tool_call>',
        "<tool_call>\n{",
    ):
        assert tools.parse_tool_calls(malformed) == (malformed, [])
    assert tools.parse_tool_calls("just text") == ("just text", [])


def test_forced_call_prefix_is_how_the_convention_starts_a_call():
    prefix = tools.forced_call_prefix("get_order")
    assert prefix == '<tool_call>\n{"name": "get_order", "arguments": '
    written = tools.assistant_text(checked(example())["messages"][1])
    assert written.startswith(prefix) and written.endswith("}" + "\n" + tools.TOOL_CALL_CLOSE)
    assert tools.TOOL_CALL_OPEN == "<tool_call>" and tools.TOOL_CALL_CLOSE == "</tool_call>"


def test_a_template_that_renders_tools_is_used_instead_of_the_fallback(tool_tokenizer, tokenizer):
    record = checked(example())
    assert tools.template_supports_tools(tool_tokenizer)
    text = tools.render(tool_tokenizer, record["messages"], record["tools"])
    assert "TOOLS: get_order=Look up an order" in text and 'CALL get_order {"order_id": "3"}' in text
    assert "<tool_call>" not in text and "<tools>" not in text
    assert 'CALL get_order {"order_id": "3"}' in trained_text(tool_tokenizer, record)
    tool_tokenizer.chat_template = tokenizer.chat_template + "{# tools and tool_calls are not rendered #}"
    assert not tools.template_supports_tools(tool_tokenizer)


def test_prompts_for_generation_and_grpo_carry_the_tools(tokenizer):
    from tunelab.training.reinforcement import encode_prompts

    record = checked(example())
    prompt = chat_prompt(tokenizer, record["messages"], record["tools"])
    assert "<tools>" in prompt and "<tool_response>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert "Order 3 has shipped." not in prompt
    task = normalise(
        "reinforcement", {"messages": [EXAMPLE["messages"][0]], "tools": EXAMPLE["tools"], "answer": "3"}, True
    )
    [encoded] = encode_prompts([task], tokenizer, SimpleNamespace(max_length=1024), "train")
    assert "<tools>" in tokenizer.decode(encoded.input_ids) and encoded.record["answer"] == "3"


def test_preference_prompts_with_tools_train_only_the_reply(tokenizer):
    from tunelab.training.preference import encode_pair

    record = example()
    pair = {
        "input": {"messages": record["messages"][:3], "tools": record["tools"]},
        "preferred_output": [{"role": "assistant", "content": "Order 3 has shipped."}],
        "non_preferred_output": [{"role": "assistant", "content": "I cannot say."}],
    }
    normalised = normalise("preference", pair, True)
    assert normalised["tools"] == EXAMPLE["tools"] and normalised["prompt"][1]["tool_calls"]
    assert record_texts(normalised)[1] == '{"order_id": "3"}'
    chosen = encode_pair(normalised, tokenizer, 1024).chosen
    trained = tokenizer.decode([t for t, label in zip(chosen.input_ids, chosen.labels) if label != IGNORE])
    assert "Order 3 has shipped." in trained and "<tool_call>" not in trained
    assert "<tools>" in tokenizer.decode(chosen.input_ids)


def test_the_planner_counts_tool_records_as_the_trainer_encodes_them(tokenizer):
    from tunelab.cost.tokens import count_with_tokenizer

    record = checked(example())
    expected = len(encode_chat(tokenizer, record["messages"], "assistant", 1024, record["tools"]).input_ids)
    assert count_with_tokenizer([record], tokenizer) == [expected]
