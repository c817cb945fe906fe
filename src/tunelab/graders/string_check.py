"""`string_check`: 1.0 or 0.0 from comparing the rendered input with the rendered reference.

`like` and `ilike` are containment (the input contains the reference), as OpenAI documents them,
not SQL patterns; `ilike` ignores case.
"""

from tunelab.graders.base import Grader, Outcome, Spec
from tunelab.graders.templates import Sample, render

OPERATIONS = {
    "eq": lambda text, reference: text == reference,
    "ne": lambda text, reference: text != reference,
    "like": lambda text, reference: reference in text,
    "ilike": lambda text, reference: reference.lower() in text.lower(),
}


class StringCheckGrader(Grader):
    type = "string_check"
    keys = ("input", "reference", "operation")

    def __init__(self, name: str, input: str, reference: str, operation: str):
        super().__init__(name)
        self.input, self.reference, self.operation = input, reference, operation

    @classmethod
    def from_spec(cls, spec: Spec) -> "StringCheckGrader":
        return cls(spec.name, spec.text("input"), spec.text("reference"), spec.choice("operation", tuple(OPERATIONS)))

    def grade_batch(self, samples: list[Sample], items: list[dict]) -> list[Outcome]:
        return [self.grade_one(sample, item) for sample, item in zip(samples, items)]

    def grade_one(self, sample: Sample, item: dict) -> Outcome:
        matched = OPERATIONS[self.operation](render(self.input, sample, item), render(self.reference, sample, item))
        return Outcome(1.0 if matched else 0.0)
