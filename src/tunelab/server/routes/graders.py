"""/v1/fine_tuning/alpha/graders/validate and /run: OpenAI's grader objects through tunelab's one grader module
(the same code that scores reinforcement jobs), with the response shapes of OpenAI's spec."""

import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from tunelab.server.api_errors import ApiError

router = APIRouter(prefix="/v1/fine_tuning/alpha/graders", tags=["graders"])
PYTHON_ERRORS = ("exception", "memory", "timeout", "killed", "crashed", "file_size")


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: dict


class RunRequest(ValidateRequest):
    model_sample: str
    item: dict | None = None


def built(grader: dict):
    from tunelab.errors import ConfigError
    from tunelab.graders import validate_grader

    try:
        return validate_grader(grader, "grader")
    except ConfigError as exc:
        raise ApiError(400, str(exc), exc.message.partition(":")[0], "invalid_grader") from None


@router.post("/validate", summary="Check a grader object")
def validate(body: ValidateRequest):
    built(body.grader).close()
    return {"grader": body.grader}


def error_flags(kind: str | None, detail: str) -> dict:
    """OpenAI's error booleans for one graded sample, from tunelab's failure kind."""
    python = kind in PYTHON_ERRORS
    return {
        "formula_parse_error": kind == "formula",
        "sample_parse_error": kind == "unparsable",
        "truncated_observation_error": False,
        "unresponsive_reward_error": kind == "timeout",
        "invalid_variable_error": False,
        "other_error": kind is not None and not python and kind not in ("formula", "unparsable"),
        "python_grader_server_error": False,
        "python_grader_server_error_type": None,
        "python_grader_runtime_error": python,
        "python_grader_runtime_error_details": detail or None if python else None,
        "model_grader_server_error": False,
        "model_grader_refusal_error": False,
        "model_grader_parse_error": False,
        "model_grader_server_error_details": None,
    }


@router.post("/run", summary="Grade one model sample")
def run(body: RunRequest):
    from tunelab.graders import Sample

    grader = built(body.grader)
    began = time.perf_counter()
    try:
        outcome = grader.grade_batch([Sample(body.model_sample)], [body.item or {}])[0]
        sub_rewards = {
            name: sub.grade_batch([Sample(body.model_sample)], [body.item or {}])[0].score
            for name, sub in getattr(grader, "graders", {}).items()
        }
    finally:
        grader.close()
    return {
        "reward": outcome.score,
        "metadata": {
            "name": grader.name,
            "type": grader.type,
            "errors": error_flags(outcome.error, outcome.detail),
            "execution_time": round(time.perf_counter() - began, 6),
            "scores": sub_rewards,
            "token_usage": None,
            "sampled_model_name": None,
        },
        "sub_rewards": sub_rewards,
        "model_grader_token_usage_per_model": {},
    }
