"""/v1/chat/completions' OpenAI features in-process on a tiny random Llama: response_format by constrained decoding,
tools and tool_choice, logprobs, penalties and logit_bias, refusals naming the parameter, and every body checked
against OpenAI's published schemas (../shared/openai-openapi). A random model is the point: whatever it wants to
write, the grammar keeps the answer valid."""

import json

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from openai_spec import assert_conforms
from tiny_models import tiny_llama

from tunelab.server.app import create_app
from tunelab.server.config import ServeConfig

ORDER = {
    "type": "object",
    "properties": {"order": {"type": "string"}, "status": {"type": "string", "enum": ["shipped", "late"]}},
    "required": ["order", "status"],
    "additionalProperties": False,
}
SCHEMAS = {
    "enum": {"type": "string", "enum": ["red", "green", "blue"]},
    "nested": {
        "type": "object",
        "properties": {
            "customer": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 12}, "vip": {"type": "boolean"}},
                "required": ["name", "vip"],
                "additionalProperties": False,
            },
            "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["customer", "priority"],
        "additionalProperties": False,
    },
    "array": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string", "enum": ["a", "bb"]}, "minItems": 1}},
        "required": ["tags"],
    },
    "integers": {"type": "array", "items": {"type": "integer", "minimum": -50, "maximum": 50}, "minItems": 2},
}
STATUS_TOOL = {
    "type": "function",
    "function": {
        "name": "get_status",
        "description": "Look an order up",
        "parameters": {
            "type": "object",
            "properties": {"order": {"type": "integer", "minimum": 0}, "urgent": {"type": "boolean"}},
            "required": ["order", "urgent"],
            "additionalProperties": False,
        },
    },
}
REFUND_TOOL = {
    "type": "function",
    "function": {
        "name": "refund",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "enum": ["late", "broken"]}},
            "required": ["reason"],
        },
    },
}
ASK = [{"role": "user", "content": "Order 5 status as JSON"}]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = ServeConfig(home=tmp_path_factory.mktemp("home"), models={"tiny": str(tiny_llama())})
    return TestClient(create_app(config))


def chat(client, **body) -> dict:
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": ASK, **body})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert_conforms(reply, "CreateChatCompletionResponse")
    assert isinstance(reply["system_fingerprint"], str)
    return reply


def refused(client, path: str = "/v1/chat/completions", **body) -> dict:
    response = client.post(path, json={"model": "tiny", **({"messages": ASK} if "chat" in path else {}), **body})
    assert response.status_code == 400, response.text
    return response.json()["error"]


def events(client, **body) -> list[dict]:
    with client.stream("POST", "/v1/chat/completions", json={"model": "tiny", "messages": ASK, **body}) as response:
        assert response.status_code == 200
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    for chunk in chunks:
        assert_conforms(chunk, "CreateChatCompletionStreamResponse")
        assert isinstance(chunk.get("system_fingerprint", ""), str)
    return chunks


def json_schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}


def test_json_object_always_parses(client):
    reply = chat(client, response_format={"type": "json_object"}, max_tokens=24, n=3, seed=3)
    for choice in reply["choices"]:
        assert isinstance(json.loads(choice["message"]["content"]), dict)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_json_schema_output_validates(client, name):
    schema = SCHEMAS[name]
    reply = chat(client, response_format=json_schema_format(schema), max_tokens=40, n=2, seed=1)
    validator = jsonschema_rs.validator_for(schema)
    for choice in reply["choices"]:
        assert validator.is_valid(json.loads(choice["message"]["content"])), choice


def test_the_acceptance_order_schema_fits_60_tokens(client):
    reply = chat(client, response_format=json_schema_format(ORDER), max_tokens=60, n=4, seed=5, temperature=1.2)
    for choice in reply["choices"]:
        answer = json.loads(choice["message"]["content"])
        assert set(answer) == {"order", "status"} and answer["status"] in ("shipped", "late")
    assert reply["usage"]["completion_tokens"] <= 4 * 60


def test_a_cut_short_answer_still_parses_and_says_length(client):
    reply = chat(client, response_format=json_schema_format(ORDER), max_tokens=20, temperature=1.0, seed=2)
    choice = reply["choices"][0]
    assert set(json.loads(choice["message"]["content"])) == {"order", "status"}
    assert choice["finish_reason"] == "length" and reply["usage"]["completion_tokens"] <= 20


def test_an_unenforceable_schema_is_refused(client):
    error = refused(client, response_format=json_schema_format({"type": "objekt"}))
    assert error["param"] == "response_format" and "objekt" in error["message"]
    bad_name = {"type": "json_schema", "json_schema": {"name": "has space", "schema": ORDER}}
    assert refused(client, response_format=bad_name)["param"].startswith("response_format")


def test_a_forced_call_matches_the_parameters(client):
    reply = chat(
        client,
        tools=[STATUS_TOOL, REFUND_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_status"}},
        max_tokens=40,
        n=2,
        seed=4,
    )
    validator = jsonschema_rs.validator_for(STATUS_TOOL["function"]["parameters"])
    for choice in reply["choices"]:
        message = choice["message"]
        assert choice["finish_reason"] == "tool_calls" and message["content"] is None
        (call,) = message["tool_calls"]
        assert call["id"].startswith("call_") and call["function"]["name"] == "get_status"
        assert validator.is_valid(json.loads(call["function"]["arguments"]))


def test_required_calls_one_of_the_tools(client):
    reply = chat(client, tools=[STATUS_TOOL, REFUND_TOOL], tool_choice="required", parallel_tool_calls=False, seed=6)
    (call,) = reply["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] in ("get_status", "refund") and json.loads(call["function"]["arguments"])
    assert reply["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_choice_none_answers_in_text_and_history_with_calls_is_accepted(client):
    history = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_status", "arguments": '{"order": 5}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "late"}'},
    ]
    reply = chat(client, messages=history, tools=[STATUS_TOOL], tool_choice="none", max_tokens=8)
    message = reply["choices"][0]["message"]
    assert "tool_calls" not in message and isinstance(message["content"], str)
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")


def test_logprobs_follow_the_spec_with_k_sorted_alternatives(client):
    reply = chat(client, logprobs=True, top_logprobs=4, max_tokens=6, temperature=0)
    content = reply["choices"][0]["logprobs"]["content"]
    assert 1 <= len(content) <= 6
    for entry in content:
        top = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(top) == 4 and top == sorted(top, reverse=True) and all(v <= 0 for v in top)
        assert entry["top_logprobs"][0]["token"] == entry["token"]  # greedy takes the most likely token
        assert bytes(entry["bytes"]).decode(errors="replace") == entry["token"]
    assert chat(client, max_tokens=2)["choices"][0]["logprobs"] is None


def test_same_seed_same_answer_and_logit_bias_takes_over(client):
    first, second = (chat(client, max_tokens=8, temperature=1.0, seed=11) for _ in range(2))
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    forced = chat(client, max_tokens=4, temperature=0, logit_bias={"314": 100}, frequency_penalty=0.5, logprobs=True)
    tokens = {entry["token"] for entry in forced["choices"][0]["logprobs"]["content"]}
    assert len(tokens) == 1 and forced["usage"]["completion_tokens"] == 4


def test_stream_chunks_conform_and_carry_logprobs(client):
    chunks = events(
        client,
        stream=True,
        stream_options={"include_usage": True},
        response_format={"type": "json_object"},
        logprobs=True,
        top_logprobs=2,
        max_tokens=16,
        seed=1,
    )
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert isinstance(json.loads(text), dict)
    tokens = [
        e["token"]
        for c in chunks
        if c["choices"] and c["choices"][0]["logprobs"]
        for e in c["choices"][0]["logprobs"]["content"]
    ]
    assert "".join(tokens) == text
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(tokens)


def test_streamed_tool_calls_arrive_whole(client):
    chunks = events(client, stream=True, tools=[STATUS_TOOL], tool_choice="required", parallel_tool_calls=False)
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_status"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"frobnicate": 1}, "frobnicate"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [STATUS_TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"stream": True, "n": 2}, "n"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": {"include_obfuscation": True}}, "stream_options.include_obfuscation"),
        ({"logit_bias": {"999999": 1}}, "logit_bias"),
        ({"logit_bias": {"5": 300}}, "logit_bias"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"modalities": ["audio"]}, "modalities.0"),
        ({"messages": [{"role": "user", "content": "hi", "mood": "x"}]}, "messages.0.mood"),
        (
            {"tools": [{**STATUS_TOOL, "function": {"name": "f", "parameters": {"type": "objekt"}}}]},
            "tools.0.function.parameters",
        ),
        ({"tools": [STATUS_TOOL], "response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_what_is_not_implemented_is_refused_naming_it(client, body, param):
    error = refused(client, **body)
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_harmless_fields_are_accepted(client):
    chat(
        client,
        max_tokens=2,
        user="u-1",
        metadata={"team": "support"},
        store=False,
        safety_identifier="abc",
        prompt_cache_key="k",
        service_tier="default",
        frequency_penalty=0,
        presence_penalty=0,
        temperature=None,
        parallel_tool_calls=True,
    )


def test_completions_carry_a_fingerprint_and_logprobs(client):
    response = client.post(
        "/v1/completions", json={"model": "tiny", "prompt": "Ticket 5:", "max_tokens": 4, "logprobs": 2}
    )
    body = response.json()
    assert_conforms(body, "CreateCompletionResponse")
    logprobs = body["choices"][0]["logprobs"]
    assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == body["usage"]["completion_tokens"]
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"]) and body["system_fingerprint"]
    assert refused(client, "/v1/completions", prompt="x", suffix="y")["param"] == "suffix"
    streamed = {"model": "tiny", "prompt": "Hi", "max_tokens": 3, "stream": True, "logprobs": 1}
    with client.stream("POST", "/v1/completions", json=streamed) as s:
        chunks = [json.loads(line[6:]) for line in s.iter_lines() if line.startswith("data: {")]
    for chunk in chunks:  # no stream schema for completions: OpenAI's chunks are responses whose finish_reason is null
        choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]
        assert_conforms({**chunk, "choices": choices}, "CreateCompletionResponse")
    assert sum(len(c["choices"][0]["logprobs"]["tokens"]) for c in chunks if c["choices"][0]["logprobs"]) == 3


def test_logprobs_end_where_a_stop_sequence_cuts_the_text(client):
    reply = chat(client, max_tokens=12, temperature=1.0, seed=8, stop=["e"], logprobs=True)
    choice = reply["choices"][0]
    tokens = [e["token"] for e in choice["logprobs"]["content"]]
    assert choice["finish_reason"] == "stop" and "e" not in choice["message"]["content"]
    assert "e" not in "".join(tokens[:-1]) and "e" in tokens[-1]  # up to the token the stop sequence begins in
    assert "".join(tokens).strip().startswith(choice["message"]["content"])


def test_the_openai_client_parses_structured_output_and_tools(client):
    from typing import Literal

    from openai import OpenAI, pydantic_function_tool
    from pydantic import BaseModel, Field

    class Status(BaseModel):  # bounded, so that the answer ends before the budget (a closed-early one says "length")
        order: str = Field(max_length=6)
        status: Literal["shipped", "late"]

    class Lookup(BaseModel):
        order: int = Field(ge=0, le=99)

    sdk = OpenAI(base_url="http://testserver/v1", api_key="none", http_client=client, max_retries=0)
    parsed = sdk.chat.completions.parse(model="tiny", messages=ASK, response_format=Status, max_tokens=60, seed=2)
    assert isinstance(parsed.choices[0].message.parsed, Status)
    called = sdk.chat.completions.parse(
        model="tiny", messages=ASK, tools=[pydantic_function_tool(Lookup)], tool_choice="required", max_tokens=30
    )
    call = called.choices[0].message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, Lookup)


def test_auto_generates_a_call_the_model_opens_under_the_call_grammar(monkeypatch):
    from tunelab.data.tools import TOOL_CALL_OPEN
    from tunelab.inference import generate
    from tunelab.inference.chat_answers import AnswerPlan, answer_chat
    from tunelab.inference.generate import Answer
    from tunelab.inference.tool_calls import call_grammar

    grammar = call_grammar({"get_status": STATUS_TOOL["function"]["parameters"]}, ["get_status"], many=True)
    passes = []

    def fake(model, tokenizer, prompts, *, max_new_tokens, stop, processors, **sampling):
        passes.append((prompts[0], max_new_tokens, stop))
        if len(passes) == 1:
            return [Answer("Checking.\n", [1] * 5, "stop", stopped_at=TOOL_CALL_OPEN)]
        return [Answer('{"order": 5, "urgent": false}}', [2] * 9, "stop")]  # the only tool's name is in the prefix

    monkeypatch.setattr(generate, "generate_answers", fake)
    plan = AnswerPlan(optional=grammar)
    (answer,) = answer_chat(None, None, "PROMPT", 1, plan, max_new_tokens=30, stop=["END"], extra=lambda t: [])
    assert passes[0] == ("PROMPT", 30, ["END", TOOL_CALL_OPEN])
    assert passes[1] == ("PROMPT" + "Checking.\n" + grammar.prefix, 25, None)
    assert answer.content == "Checking." and answer.finish_reason == "tool_calls" and answer.completion_tokens == 14
    assert json.loads(answer.tool_calls[0]["function"]["arguments"]) == {"order": 5, "urgent": False}


def test_incremental_decoding_gives_the_whole_text():
    import random

    from tiny_models import _tokenizer

    from tunelab.server.streaming import IncrementalDecoder

    tokenizer = _tokenizer()
    tokens = [random.Random(0).randrange(len(tokenizer)) for _ in range(200)]
    tokens += tokenizer("naïve café — 東京 🙂", add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tokenizer)
    assert "".join(decoder.add(t) for t in tokens) == tokenizer.decode(tokens, skip_special_tokens=True)


def test_the_closing_plan_finishes_any_state_it_is_asked_from():
    from llguidance import LLMatcher
    from tiny_models import _tokenizer

    from tunelab.inference.constrained import Constraint, closing_plan, vocabulary

    vocab = vocabulary(_tokenizer())
    for schema in [ORDER, *SCHEMAS.values()]:
        matcher = LLMatcher(vocab.llg, Constraint.json_schema(schema).grammar)
        plan = closing_plan(matcher, vocab.closing_tokens, 200)
        assert jsonschema_rs.validator_for(schema).is_valid(json.loads(vocab.llg.decode_str(plan)))
