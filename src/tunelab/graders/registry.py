"""The table of grader types, and the two ways in: `validate_grader(obj)` and `load_grader(path or obj)`.

The table is keyed by OpenAI's `type` names; training (grpo), `tunelab grade`, evaluation and the
service all build their graders here, so a grader file means the same thing everywhere.
"""

import json
from pathlib import Path

from tunelab.errors import ConfigError
from tunelab.graders.base import Grader, Spec
from tunelab.graders.model_judge import LabelModelGrader, ScoreModelGrader
from tunelab.graders.multi import MultiGrader
from tunelab.graders.python_grader import PythonGrader
from tunelab.graders.string_check import StringCheckGrader
from tunelab.graders.text_similarity import TextSimilarityGrader

GRADER_TYPES: dict[str, type[Grader]] = {
    grader.type: grader
    for grader in (
        StringCheckGrader,
        TextSimilarityGrader,
        PythonGrader,
        ScoreModelGrader,
        LabelModelGrader,
        MultiGrader,
    )
}


def validate_grader(obj, where: str = "grader") -> Grader:
    """A Grader from an OpenAI grader object; a ConfigError names the bad key (`where.key`) and the fix."""
    if isinstance(obj, Grader):
        return obj
    known = ", ".join(GRADER_TYPES)
    if not isinstance(obj, dict):
        raise ConfigError(
            f"{where}: a grader is a JSON object, not {type(obj).__name__}", f"give one with a type: {known}"
        )
    kind = obj.get("type")
    if kind not in GRADER_TYPES:
        problem = "missing" if kind is None else f"{kind!r} is not a grader type"
        raise ConfigError(f"{where}.type: {problem}", f"use one of {known}")
    grader_class = GRADER_TYPES[kind]
    spec = Spec(obj, where)
    spec.only(grader_class.keys)
    return grader_class.from_spec(spec)


def read_grader_file(path: Path):
    """The grader object in a JSON (or YAML) file; a bad file is a ConfigError naming it and the line."""
    if not path.is_file():
        raise ConfigError(f"grader file not found: {path}", "pass a JSON file holding an OpenAI grader object")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})", "fix the file's syntax") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(
            f"{path}:{line}: not valid JSON ({getattr(exc, 'msg', exc)})", "fix the file's syntax"
        ) from None


def load_grader(source: str | Path | dict | Grader) -> Grader:
    """A grader from a file path, a JSON string, or an already parsed object."""
    if isinstance(source, dict | Grader):
        return validate_grader(source)
    if isinstance(source, str) and source.lstrip().startswith("{"):
        try:
            return validate_grader(json.loads(source))
        except ValueError as exc:
            raise ConfigError(f"grader: not valid JSON ({exc})", "pass a file path or a JSON object") from None
    path = Path(source)
    return validate_grader(read_grader_file(path), f"{path}: grader")
