"""OpenAI's grader templates: `{{item.x}}`, `{{item.a.b}}`, `{{sample.output_text}}`, `{{sample.output_json.x}}`.

A template is checked once, when its grader is validated, so a typo in a namespace is a ConfigError
before any sample is scored; rendering never fails: a missing field renders as an empty string,
as OpenAI's graders do, so one odd record cannot stop a run.
"""

import json
import re
from functools import cached_property

from tunelab.errors import ConfigError

PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
SAMPLE_FIELDS = ("output_text", "output_json")
FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class Sample:
    """One model output: its text, and the text parsed as JSON on first use (None when it is not JSON)."""

    def __init__(self, output_text: str):
        self.output_text = output_text

    @cached_property
    def output_json(self):
        text = self.output_text.strip()
        fenced = FENCE.match(text)  # small models wrap JSON in a markdown fence; the fence is not the answer
        try:
            return json.loads(fenced.group(1) if fenced else text)
        except (ValueError, RecursionError):
            return None

    def as_dict(self) -> dict:
        return {"output_text": self.output_text, "output_json": self.output_json}


def as_sample(value) -> Sample:
    """A Sample from a Sample, a string, or a dict with `output_text` (as OpenAI's `sample` object holds it)."""
    if isinstance(value, Sample):
        return value
    if isinstance(value, dict):
        text = value.get("output_text")
        return Sample("" if text is None else str(text))
    return Sample("" if value is None else str(value))


def path_parts(expression: str) -> list[str]:
    """`item.messages[0].content` → ["item", "messages", "0", "content"]."""
    return [part for part in re.split(r"[.\[\]]+", expression) if part]


def check_template(template: str, where: str) -> None:
    """Refuse a placeholder outside the `item` and `sample` namespaces, naming the key that holds it."""
    for match in PLACEHOLDER.finditer(template):
        parts = path_parts(match.group(1))
        if parts and parts[0] == "item":
            continue
        if len(parts) >= 2 and parts[0] == "sample" and parts[1] in SAMPLE_FIELDS:
            continue
        raise ConfigError(
            f"{where}: unknown template variable {{{{{match.group(1)}}}}}",
            "use {{item.<field>}} for the data record, {{sample.output_text}} or {{sample.output_json.<field>}}",
        )


def lookup(parts: list[str], sample: Sample, item) -> object:
    """The value a placeholder names, or None where any step is missing."""
    if parts[:1] == ["item"]:
        value, rest = item, parts[1:]
    elif len(parts) >= 2 and parts[0] == "sample" and parts[1] in SAMPLE_FIELDS:
        value, rest = getattr(sample, parts[1]), parts[2:]
    else:
        return None
    for key in rest:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def as_text(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(template: str, sample: Sample, item: dict) -> str:
    """The template with every placeholder replaced by the sample's or the record's value."""
    return PLACEHOLDER.sub(lambda match: as_text(lookup(path_parts(match.group(1)), sample, item)), template)
