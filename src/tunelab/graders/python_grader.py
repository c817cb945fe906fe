"""`python`: the user's `grade(sample, item) -> float`, run in a sandbox (sandbox.py), never in this process.

Validation only compiles the source and looks for a top-level `grade` taking two arguments; the
code itself first runs inside the sandbox. `image_tag` (OpenAI's choice of container image) is
accepted and ignored: the sandbox runs this project's Python with the packages installed here.
"""

import ast

from tunelab.graders.base import Grader, Outcome, Spec
from tunelab.graders.sandbox import MECHANISMS, Sandbox, SandboxLimits
from tunelab.graders.templates import Sample

MAX_SOURCE_BYTES = 256 * 1024  # OpenAI's limit on a python grader's source


def check_source(source: str, spec: Spec) -> None:
    if len(source.encode()) > MAX_SOURCE_BYTES:
        spec.fail("source", f"is over {MAX_SOURCE_BYTES // 1024} KB", "keep the grader's source small")
    try:
        tree = ast.parse(source, "grader.py")
    except SyntaxError as exc:
        spec.fail("source", f"does not compile: line {exc.lineno}: {exc.msg}", "fix the Python syntax")
    grades = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "grade"]
    if not grades:
        spec.fail("source", "defines no grade() function", "define `def grade(sample, item) -> float:` at top level")
    arguments = grades[-1].args
    if len(arguments.posonlyargs + arguments.args) < 2 and not arguments.vararg:
        spec.fail("source", "grade() must take (sample, item)", "define `def grade(sample, item) -> float:`")


class PythonGrader(Grader):
    type = "python"
    keys = ("source", "image_tag")

    def __init__(self, name: str, source: str, limits: SandboxLimits | None = None, mechanism: str = "auto"):
        super().__init__(name)
        self.source, self.limits, self.mechanism = source, limits or SandboxLimits(), mechanism
        self.sandbox: Sandbox | None = None

    @classmethod
    def from_spec(cls, spec: Spec) -> "PythonGrader":
        source = spec.text("source", template=False)
        check_source(source, spec)
        spec.get("image_tag", str, required=False)
        return cls(spec.name, source)

    def configure(self, limits: SandboxLimits | None = None, mechanism: str | None = None) -> None:
        """Other limits or a forced mechanism (one of MECHANISMS) for the next worker."""
        if mechanism and mechanism not in ("auto", *MECHANISMS):
            raise ValueError(f"unknown sandbox mechanism {mechanism}")
        self.close()
        self.limits, self.mechanism = limits or self.limits, mechanism or self.mechanism

    def set_sandbox_limits(self, limits: SandboxLimits) -> None:
        self.configure(limits)

    def grade_batch(self, samples: list[Sample], items: list[dict]) -> list[Outcome]:
        """All samples through one long-lived worker (started on first use, kept for the next batch)."""
        if self.sandbox is None:
            self.sandbox = Sandbox(self.source, self.limits, self.mechanism)
        return [self.sandbox.grade(sample.as_dict(), item) for sample, item in zip(samples, items)]

    @property
    def sandbox_mechanism(self) -> str | None:
        return self.sandbox.mechanism if self.sandbox else None

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
