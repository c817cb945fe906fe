"""Request and response shapes of /v1/chat/completions and /v1/completions.

Every field of OpenAI's request schemas is either honoured, accepted because it cannot change the
answer (user, metadata, store, safety_identifier, prompt caching hints), or refused with a 400
naming it: `UNSUPPORTED` lists what is declared only to be refused with a reason, and any other
unknown field is refused by `extra="forbid"`. A null stands for the field's default, as in the spec.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
UNSUPPORTED = {
    "audio": "audio output is not supported: the models served here write text",
    "prediction": "predicted outputs are not supported",
    "web_search_options": "web search is not supported",
    "reasoning_effort": "the models served here are not reasoning models",
    "verbosity": "verbosity is not supported",
    "functions": "the deprecated `functions` are not supported: send them as `tools`",
    "function_call": "the deprecated `function_call` is not supported: use `tool_choice`",
    "moderation": "moderation is not supported",
    "suffix": "suffix (fill-in-the-middle) is not supported",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def null_is_default(cls, data):
        """The spec marks most fields nullable, meaning "use the default"."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k not in cls.model_fields}
        return data


class TextPart(Strict):
    type: Literal["text"]
    text: str


class FunctionCall(Strict):
    name: str
    arguments: str


class ToolCall(Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # assistant turns that called tools
    tool_call_id: str | None = None  # the call a tool turn answers
    refusal: str | None = None  # an assistant turn that refused: rendered as its text

    @model_validator(mode="after")
    def shape_of_role(self):
        if self.role == "tool" and (self.tool_call_id is None or self.content is None):
            raise ValueError("a tool message needs tool_call_id and content")
        if self.role != "assistant" and self.tool_calls:
            raise ValueError("only assistant messages carry tool_calls")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("only tool messages carry tool_call_id")
        return self

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or self.refusal or ""

    def for_template(self) -> dict:
        """The message as tunelab.data.tools.render takes it (developer is the system role to a template)."""
        message = {"role": "system" if self.role == "developer" else self.role, "content": self.text()}
        if self.name:
            message["name"] = self.name
        if self.tool_calls:
            message["tool_calls"] = [call.model_dump() for call in self.tool_calls]
            message["content"] = message["content"] or None
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


class StreamOptions(Strict):
    include_usage: bool = False
    include_obfuscation: Literal[False] = Field(False, description="Obfuscation padding is not implemented.")


class JsonSchemaFormat(Strict):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    schema_: dict = Field(default_factory=dict, alias="schema")
    strict: bool = False  # the schema is enforced either way

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TextFormat(Strict):
    type: Literal["text"]


class JsonObjectFormat(Strict):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")]


class FunctionDefinition(Strict):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict = Field(
        default_factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )
    strict: bool = False  # forced and required calls are constrained to `parameters` either way


class Tool(Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Strict):
    name: str


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: NamedFunction


class Sampling(Strict):
    model: str
    max_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, ge=0, le=1, description="0 keeps only the most likely token (greedy).")
    n: int = Field(1, ge=1, le=8)
    stop: str | list[str] | None = Field(None, description="Up to 4 sequences.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    logit_bias: dict[str, float] | None = Field(None, description="Token id (as a string) to a bias in [-100, 100].")
    user: str | None = None
    suffix: Any = None  # declared to be refused with a reason (UNSUPPORTED)

    @model_validator(mode="after")
    def at_most_four_stops(self):
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop takes at most 4 sequences")
        return self

    def stops(self) -> list[str] | None:
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return [s for s in stops or [] if s][:4] or None

    def refused(self) -> tuple[str, str] | None:
        """(param, why) for the first field set that this service refuses, else None."""
        for name, why in UNSUPPORTED.items():
            if name in type(self).model_fields and getattr(self, name) is not None:
                return name, why
        if self.stream_options is not None and not self.stream:
            return "stream_options", "stream_options is only allowed when stream is true"
        for token, bias in (self.logit_bias or {}).items():
            if not token.isdigit() or not -100 <= bias <= 100:
                return "logit_bias", f"logit_bias maps token ids to biases in [-100, 100]; got {token!r}: {bias}"
        return None


class ChatRequest(Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    metadata: dict[str, str] | None = None
    store: bool = False
    service_tier: Literal["auto", "default"] | None = None
    modalities: list[Literal["text"]] | None = None
    safety_identifier: str | None = Field(None, max_length=64)
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict | None = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None
    reasoning_effort: Any = None
    verbosity: Any = None
    functions: Any = None
    function_call: Any = None
    moderation: Any = None

    def refused(self) -> tuple[str, str] | None:
        if refusal := super().refused():
            return refusal
        if self.top_logprobs is not None and not self.logprobs:
            return "top_logprobs", "top_logprobs needs logprobs set to true"
        if self.tool_choice is not None and not self.tools:
            return "tool_choice", "tool_choice is only allowed when tools are given"
        names = [tool.function.name for tool in self.tools or []]
        if isinstance(self.tool_choice, NamedToolChoice) and self.tool_choice.function.name not in names:
            return "tool_choice", f"tool_choice names the function {self.tool_choice.function.name!r}, not in tools"
        if len(set(names)) < len(names):
            return "tools", "two tools have the same function name"
        if self.stream and self.n > 1:
            return "n", "stream=true returns one choice here: set n to 1"
        if self.tools and self.choice() == "auto" and self.format_type() != "text":
            return "response_format", "with tools and tool_choice auto, response_format must be text"
        return None

    def choice(self) -> str:
        """none, auto, required, or the forced function's name."""
        if isinstance(self.tool_choice, NamedToolChoice):
            return self.tool_choice.function.name
        return self.tool_choice or ("auto" if self.tools else "none")

    def format_type(self) -> str:
        return self.response_format.type if self.response_format else "text"

    def max_new_tokens(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class CompletionRequest(Sampling):
    prompt: str | list[str] = Field(min_length=1)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)
    best_of: int | None = Field(None, ge=1, le=1, description="Only 1: each choice is one sample.")

    def refused(self) -> tuple[str, str] | None:
        if refusal := super().refused():
            return refusal
        if self.echo and self.logprobs is not None:
            return "logprobs", "logprobs of an echoed prompt are not supported: set echo to false"
        return None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = Field(None, description="Absent when the answer calls no tool.")


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls"]
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str
    service_tier: Literal["default"] | None = Field(None, description="Present when the request set it.")


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: CompletionLogprobs | None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    system_fingerprint: str
