"""OpenAI's grader objects (string_check, text_similarity, python, score_model, label_model, multi), one
implementation for training, evaluation, `tunelab grade` and the service. Nothing heavy is imported
until a grader needs it (a judge model, the embedding model)."""

from tunelab.graders.base import Grader, Outcome
from tunelab.graders.registry import GRADER_TYPES, load_grader, validate_grader
from tunelab.graders.report import GradeReport, score_all
from tunelab.graders.sandbox import SandboxLimits
from tunelab.graders.templates import Sample, render

__all__ = [
    "GRADER_TYPES",
    "GradeReport",
    "Grader",
    "Outcome",
    "Sample",
    "SandboxLimits",
    "load_grader",
    "render",
    "score_all",
    "validate_grader",
]
