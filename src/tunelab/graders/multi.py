"""`multi`: named sub-graders combined by a formula, e.g. `"0.5 * exact + 0.5 * valid_json"`.

`graders` is an object keyed by the names the formula uses, as in OpenAI's documentation; a list
(as in one example of OpenAI's spec) is accepted too, each sub-grader then named by its `name`.
A sample whose sub-grader fails scores 0 with that failure's kind, like any other failed sample.
"""

import ast

from tunelab.graders.base import Grader, Outcome, Spec
from tunelab.graders.formula import evaluate, parse_formula
from tunelab.graders.templates import Sample


class MultiGrader(Grader):
    type = "multi"
    keys = ("graders", "calculate_output")

    def __init__(self, name: str, graders: dict[str, Grader], calculate_output: str, formula: ast.Expression):
        super().__init__(name)
        self.graders, self.calculate_output, self.formula = graders, calculate_output, formula

    @classmethod
    def from_spec(cls, spec: Spec) -> "MultiGrader":
        graders = sub_graders(spec)
        text = spec.text("calculate_output", template=False)
        return cls(spec.name, graders, text, parse_formula(text, set(graders), f"{spec.where}.calculate_output"))

    def grade_batch(self, samples: list[Sample], items: list[dict]) -> list[Outcome]:
        results = {name: grader.grade_batch(samples, items) for name, grader in self.graders.items()}
        return [self.combine({name: outcomes[i] for name, outcomes in results.items()}) for i in range(len(samples))]

    def combine(self, outcomes: dict[str, Outcome]) -> Outcome:
        failed = next((outcome for outcome in outcomes.values() if outcome.error), None)
        if failed:
            return Outcome(0.0, failed.error, failed.detail)
        try:
            return Outcome(evaluate(self.formula, {name: outcome.score for name, outcome in outcomes.items()}))
        except (ArithmeticError, ValueError) as exc:
            return Outcome(0.0, "formula", f"{self.calculate_output}: {exc}")

    def set_sandbox_limits(self, limits) -> None:
        for grader in self.graders.values():
            grader.set_sandbox_limits(limits)

    def close(self) -> None:
        for grader in self.graders.values():
            grader.close()


def sub_graders(spec: Spec) -> dict[str, Grader]:
    """The sub-graders by name, each validated where it sits (`grader.graders.<name>`)."""
    from tunelab.graders.registry import validate_grader

    value = spec.get("graders", (dict, list))
    if isinstance(value, list):
        value = {sub.get("name") if isinstance(sub, dict) else str(index): sub for index, sub in enumerate(value)}
    if not value:
        spec.fail("graders", "is empty", 'e.g. "graders": {"exact": {"type": "string_check", ...}}')
    graders = {}
    for name, sub in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            spec.fail("graders", f"{name!r} cannot be used in a formula", "name each sub-grader like a variable: exact")
        graders[name] = validate_grader(sub, f"{spec.where}.graders.{name}")
    return graders
