"""What every grader is: a name, a type, and scores for samples; and the reader that validates its JSON.

`Spec` reads one grader object key by key, so every ConfigError names the key's full path
(`grader.graders.exact.operation`) and says how to fix it; graders never see an unchecked dict.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from tunelab.errors import ConfigError
from tunelab.graders.templates import Sample, as_sample, check_template


@dataclass
class Outcome:
    """One sample's score; `error` is the kind of failure (timeout, memory, ...) that made it 0."""

    score: float
    error: str | None = None
    detail: str = ""


class Spec:
    """A grader object being validated: typed reads of its keys, errors naming `where.key`."""

    def __init__(self, obj: dict, where: str):
        self.obj, self.where = obj, where

    @property
    def name(self) -> str:
        """OpenAI requires a name; a missing one defaults to the type, so a quick grader file stays short."""
        return self.get("name", str, required=False, default=self.obj["type"])

    def fail(self, key: str, problem: str, hint: str):
        raise ConfigError(f"{self.where}.{key}: {problem}", hint)

    def get(self, key: str, kind: type | tuple, required: bool = True, default=None):
        if key not in self.obj or self.obj[key] is None:
            if required:
                self.fail(key, "missing", f"add `{key}` to the {self.obj.get('type', '')} grader")
            return default
        value = self.obj[key]
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
            wanted = kind_name(kind)
            self.fail(
                key, f"must be {wanted}, not {JSON_NAMES.get(type(value), type(value).__name__)}", f"make it {wanted}"
            )
        return value

    def text(self, key: str, template: bool = True, required: bool = True, default: str = "") -> str:
        value = self.get(key, str, required, default)
        if template:
            check_template(value, f"{self.where}.{key}")
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.get(key, str)
        if value not in options:
            self.fail(
                key, f"{value!r} is not one of {', '.join(options)}", f"set `{key}` to one of {', '.join(options)}"
            )
        return value

    def strings(self, key: str) -> list[str]:
        values = self.get(key, list)
        if not values or not all(isinstance(v, str) and v for v in values):
            self.fail(key, "must be a non-empty list of strings", f'e.g. "{key}": ["positive", "negative"]')
        return values

    def only(self, allowed: tuple[str, ...], common: tuple[str, ...] = ("type", "name")) -> None:
        """Refuse keys the object does not have (a misspelt `referense` would otherwise be ignored)."""
        known = (*common, *allowed)
        for key in self.obj:
            if key not in known:
                self.fail(key, "unknown key", f"{self.where} takes {', '.join(known)}")


JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "an object",
}


def kind_name(kind) -> str:
    """The JSON name of what a key must hold ("a number" for int or float)."""
    kinds = _as_tuple(kind)
    return "a number" if set(kinds) == {int, float} else " or ".join(JSON_NAMES.get(k, k.__name__) for k in kinds)


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


class Grader(ABC):
    """A validated grader: built from its OpenAI object, it grades samples in batches (one sandbox process or
    one judge model serves a whole batch)."""

    type: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]  # the keys of the OpenAI object besides type and name

    def __init__(self, name: str):
        self.name = name

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: Spec) -> "Grader": ...

    @abstractmethod
    def grade_batch(self, samples: list[Sample], items: list[dict]) -> list[Outcome]: ...

    def score(self, sample, item: dict) -> float:
        """One sample's score (0.0 when grading it failed; `score_all` reports why)."""
        return self.grade_batch([as_sample(sample)], [item])[0].score

    def set_sandbox_limits(self, limits) -> None:  # noqa: B027 (a hook only the python grader fills)
        """What a python grader's code may use (SandboxLimits); other graders run no user code."""

    def close(self) -> None:  # noqa: B027 (a hook only graders holding a process or model fill)
        """Release what the grader holds (the python grader's sandbox process)."""
