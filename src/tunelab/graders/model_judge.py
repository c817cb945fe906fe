"""`score_model` and `label_model`: a local model judges each sample from the grader's templated messages.

Any model tunelab can load serves as judge (a bundled name, a model folder, a run folder); it loads
once per process. OpenAI's judges answer in structured output; a small local model is told the
answer's form instead (a line appended to the last message), then parsed: score_model takes the
first number, clamped to `range`; label_model takes the label that appears first. An answer with
neither scores 0 and counts as an `unparsable` error.
"""

import re
from abc import abstractmethod
from functools import lru_cache

from tunelab.errors import ConfigError
from tunelab.graders.base import Grader, Outcome, Spec
from tunelab.graders.templates import Sample, check_template, render

ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
DEFAULT_MAX_TOKENS = 32


def load_judge(model: str):
    """The judge model, loaded once per process (aliases of a bundled model share one copy)."""
    from tunelab.models.bundled import bundled_name

    return _load_judge(bundled_name(model) or model)


@lru_cache(maxsize=4)
def _load_judge(model: str):
    from tunelab.inference.engine import load_target

    loaded = load_target(model)
    if loaded.task != "causal-lm":
        raise ConfigError(f"grader.model: {model} is a {loaded.task} model", "a judge must be a chat (causal-lm) model")
    return loaded


def message_text(content, where: str) -> str:
    """The text of a message's content: a string, one content part, or a list of parts (text parts only)."""
    if isinstance(content, str):
        check_template(content, where)
        return content
    parts = content if isinstance(content, list) else [content]
    texts = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS or not isinstance(part.get("text"), str):
            raise ConfigError(
                f"{where}: content part of type {kind!r} is not supported by a local judge",
                f"use a string or parts of type {' or '.join(TEXT_PARTS)} with a `text`",
            )
        check_template(part["text"], where)
        texts.append(part["text"])
    return "\n".join(texts)


def read_messages(spec: Spec) -> list[dict]:
    """The grader's `input` as plain chat messages (developer counts as system for local chat templates)."""
    messages = []
    for index, message in enumerate(spec.get("input", list)):
        where = f"{spec.where}.input[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES or "content" not in message:
            raise ConfigError(f"{where}: not a message", f'give {{"role": one of {", ".join(ROLES)}, "content": ...}}')
        role = "system" if message["role"] == "developer" else message["role"]
        messages.append({"role": role, "content": message_text(message["content"], f"{where}.content")})
    if not messages:
        spec.fail("input", "is empty", 'e.g. "input": [{"role": "user", "content": "Grade: {{sample.output_text}}"}]')
    return messages


SAMPLING_TYPES = {"seed": int, "max_completions_tokens": int, "temperature": (int, float), "top_p": (int, float)}


def sampling_params(spec: Spec) -> dict:
    """OpenAI's sampling_params; the ones a local model uses are type-checked (reasoning_effort is ignored)."""
    params = spec.get("sampling_params", dict, required=False, default={})
    inner = Spec(params, f"{spec.where}.sampling_params")
    inner.only((*SAMPLING_TYPES, "reasoning_effort"), common=())
    for key, kind in SAMPLING_TYPES.items():
        inner.get(key, kind, required=False)
    return params


class JudgeGrader(Grader):
    """What both model graders share: messages rendered per sample, one batched greedy generation."""

    keys = ("model", "input", "sampling_params")

    def __init__(self, name: str, model: str, messages: list[dict], sampling_params: dict):
        super().__init__(name)
        self.model, self.messages, self.sampling_params = model, messages, sampling_params

    @classmethod
    def common(cls, spec: Spec) -> dict:
        """The constructor arguments both judges read the same way."""
        return {
            "name": spec.name,
            "model": spec.text("model", template=False),
            "messages": read_messages(spec),
            "sampling_params": sampling_params(spec),
        }

    @abstractmethod
    def instruction(self) -> str:
        """What the judge is told to answer with (a number, or one of the labels)."""

    @abstractmethod
    def parse(self, answer: str) -> Outcome:
        """The judge's answer as a score."""

    def prompt(self, tokenizer, sample: Sample, item: dict) -> str:
        from tunelab.inference.generate import chat_prompt

        rendered = [{"role": m["role"], "content": render(m["content"], sample, item)} for m in self.messages]
        rendered[-1]["content"] += "\n\n" + self.instruction()
        return chat_prompt(tokenizer, rendered)

    def grade_batch(self, samples: list[Sample], items: list[dict]) -> list[Outcome]:
        from tunelab.inference.generate import generate

        judge = load_judge(self.model)
        prompts = [self.prompt(judge.tokenizer, sample, item) for sample, item in zip(samples, items)]
        params = self.sampling_params
        answers = generate(
            judge.model,
            judge.tokenizer,
            prompts,
            max_new_tokens=params.get("max_completions_tokens") or DEFAULT_MAX_TOKENS,
            temperature=params.get("temperature") or 0.0,
            top_p=params.get("top_p") or 1.0,
            seed=params.get("seed"),
        )
        return [self.parse(answer) for answer in answers]


class ScoreModelGrader(JudgeGrader):
    type = "score_model"
    keys = (*JudgeGrader.keys, "range")

    def __init__(self, name, model, messages, sampling_params, range: tuple[float, float] = (0.0, 1.0)):
        super().__init__(name, model, messages, sampling_params)
        self.range = range

    @classmethod
    def from_spec(cls, spec: Spec) -> "ScoreModelGrader":
        bounds = spec.get("range", list, required=False, default=[0, 1])
        if len(bounds) != 2 or not all(isinstance(b, int | float) for b in bounds) or bounds[0] >= bounds[1]:
            spec.fail("range", f"{bounds} is not [low, high]", 'e.g. "range": [0, 1]')
        return cls(**cls.common(spec), range=(float(bounds[0]), float(bounds[1])))

    def instruction(self) -> str:
        low, high = self.range
        return f"Answer with only a number from {low:g} to {high:g}."

    def parse(self, answer: str) -> Outcome:
        found = NUMBER.search(answer)
        if not found:
            return Outcome(0.0, "unparsable", f"no number in the judge's answer {answer[:80]!r}")
        low, high = self.range
        return Outcome(min(max(float(found.group()), low), high))


class LabelModelGrader(JudgeGrader):
    type = "label_model"
    keys = (*JudgeGrader.keys, "labels", "passing_labels")

    def __init__(self, name, model, messages, sampling_params, labels: list[str], passing_labels: list[str]):
        super().__init__(name, model, messages, sampling_params)
        self.labels, self.passing_labels = labels, passing_labels

    @classmethod
    def from_spec(cls, spec: Spec) -> "LabelModelGrader":
        labels, passing = spec.strings("labels"), spec.strings("passing_labels")
        if not set(passing) <= set(labels):
            spec.fail(
                "passing_labels", f"{sorted(set(passing) - set(labels))} not in labels", "list a subset of labels"
            )
        return cls(**cls.common(spec), labels=labels, passing_labels=passing)

    def instruction(self) -> str:
        return f"Answer with only one of: {', '.join(self.labels)}."

    def parse(self, answer: str) -> Outcome:
        """The label found earliest in the answer (the longest one where two start at the same place)."""
        text = answer.lower()
        found = [(text.find(label.lower()), -len(label), label) for label in self.labels if label.lower() in text]
        if not found:
            return Outcome(0.0, "unparsable", f"no label in the judge's answer {answer[:80]!r}")
        label = min(found)[2]
        return Outcome(1.0 if label in self.passing_labels else 0.0, detail=label)
