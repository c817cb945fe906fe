"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request

from tunelab.server.api_errors import ApiError, found
from tunelab.server.schemas import CheckpointList, EventList, Job, JobCreate, JobList
from tunelab.server.store import new_id, now

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])
AUTO_EPOCHS, AUTO_BATCH, AUTO_MULTIPLIER = 3, 8, 1.0
JOB_FIELDS = (
    "id",
    "created_at",
    "error",
    "fine_tuned_model",
    "finished_at",
    "hyperparameters",
    "model",
    "result_files",
    "seed",
    "status",
    "trained_tokens",
    "training_file",
    "validation_file",
    "estimated_finish",
    "metadata",
    "method",
    "suffix",
)


def job_object(row: dict) -> dict:
    return {k: row.get(k) for k in JOB_FIELDS} | {
        "object": "fine_tuning.job",
        "organization_id": "org-tunelab",
        "integrations": [],
    }


def resolve_hyperparameters(body: JobCreate) -> dict:
    """Top-level hyperparameters, else method.supervised's; 'auto' becomes the value used."""
    given = body.hyperparameters
    if body.method and body.method.supervised and body.method.supervised.hyperparameters:
        given = body.method.supervised.hyperparameters
    values = given.model_dump() if given else {}
    resolved = {
        "n_epochs": values.get("n_epochs"),
        "batch_size": values.get("batch_size"),
        "learning_rate_multiplier": values.get("learning_rate_multiplier"),
    }
    defaults = {"n_epochs": AUTO_EPOCHS, "batch_size": AUTO_BATCH, "learning_rate_multiplier": AUTO_MULTIPLIER}
    for key, value in resolved.items():
        if value in (None, "auto"):
            resolved[key] = defaults[key]
        elif (key == "learning_rate_multiplier" and not 0 < value <= 100) or (
            key != "learning_rate_multiplier" and not 1 <= value <= 1000
        ):
            raise ApiError(
                400,
                f"hyperparameters.{key} is out of range (got {value})",
                f"hyperparameters.{key}",
                "invalid_hyperparameter",
            )
    return resolved


def check_file(store, file_id: str | None, param: str) -> None:
    if file_id is None:
        return
    row = found(store.get("files", file_id), "file", file_id, param)
    if row["purpose"] != "fine-tune":
        raise ApiError(
            400, f"File {file_id} has purpose {row['purpose']!r}, not 'fine-tune'.", param, "invalid_file_purpose"
        )


@router.post("", response_model=Job, summary="Create a fine-tuning job")
def create_job(request: Request, body: JobCreate):
    service = request.app.state.service
    if body.method and body.method.type != "supervised":
        raise ApiError(
            400,
            f"method {body.method.type!r} is not supported here; use 'supervised'.",
            "method.type",
            "unsupported_method",
        )
    bases = service.config.base_models()
    if body.model not in bases:
        raise ApiError(
            404,
            f"The model '{body.model}' does not exist or cannot be fine-tuned here; base models: {', '.join(bases)}.",
            "model",
            "model_not_found",
        )
    check_file(service.store, body.training_file, "training_file")
    check_file(service.store, body.validation_file, "validation_file")
    hyperparameters = resolve_hyperparameters(body)
    method = {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}
    row = service.store.insert(
        "jobs",
        {
            "id": new_id("ftjob"),
            "created_at": now(),
            "model": body.model,
            "base_name": bases[body.model],
            "training_file": body.training_file,
            "validation_file": body.validation_file,
            "suffix": body.suffix,
            "seed": body.seed if body.seed is not None else 42,
            "hyperparameters": hyperparameters,
            "method": method,
            "metadata": body.metadata,
            "status": "validating_files",
        },
    )
    service.store.add_event(
        row["id"],
        f"Validating training file: {body.training_file}"
        + (f" and validation file: {body.validation_file}" if body.validation_file else ""),
    )
    service.worker.wake()
    return job_object(row)


@router.get("", response_model=JobList, summary="List fine-tuning jobs, newest first")
def list_jobs(request: Request, after: str | None = None, limit: int = Query(20, ge=1, le=100)):
    rows, more = request.app.state.service.store.page("jobs", after, limit)
    return {"object": "list", "data": [job_object(r) for r in rows], "has_more": more}


def find_job(request: Request, job_id: str) -> dict:
    return found(request.app.state.service.store.get("jobs", job_id), "fine-tuning job", job_id, "fine_tuning_job_id")


@router.get("/{fine_tuning_job_id}", response_model=Job, summary="Retrieve a fine-tuning job")
def retrieve_job(request: Request, fine_tuning_job_id: str):
    return job_object(find_job(request, fine_tuning_job_id))


@dataclass(frozen=True)
class JobAction:
    """What cancel, pause or resume sets on a job, logs and tells the worker, and its 409 when the status forbids it."""

    changes: Callable[[Any, dict], dict]  # (service, job row) -> the columns to set
    refusal: str  # follows "Job ID ", given the job's {status}
    code: str
    event: str
    stops_run: bool  # True: stop the job's runner before logging the event; False: wake the worker after it


def resumed_changes(service, row: dict) -> dict:
    prepared = (service.config.jobs_dir / row["id"] / "data" / "manifest.json").exists()
    return {"status": "queued" if prepared else "validating_files"}


CANCEL = JobAction(
    changes=lambda service, row: {"status": "cancelled", "finished_at": now(), "estimated_finish": None},
    refusal="has already {status}; only unfinished jobs can be cancelled.",
    code="job_not_cancellable",
    event="Job cancelled by request",
    stops_run=True,
)
PAUSE = JobAction(
    changes=lambda service, row: {"status": "paused", "estimated_finish": None},
    refusal="is {status}; only queued or running jobs can be paused.",
    code="job_not_pausable",
    event="Job paused; it continues from its last checkpoint when resumed",
    stops_run=True,
)
RESUME = JobAction(
    changes=resumed_changes,
    refusal="is {status}; only paused jobs can be resumed.",
    code="job_not_resumable",
    event="Job resumed; waiting in the queue",
    stops_run=False,
)


def transition_job(request: Request, job_id: str, allowed: tuple[str, ...], action: JobAction) -> dict:
    """Move a job whose status is one of `allowed` as `action` says, and answer the updated job; 409 otherwise."""
    service = request.app.state.service
    row = find_job(request, job_id)
    if not service.store.update("jobs", row["id"], allowed, **action.changes(service, row)):
        raise ApiError(
            409,
            f"Job {row['id']} {action.refusal.format(status=row['status'])}",
            "fine_tuning_job_id",
            action.code,
        )
    if action.stops_run:
        service.worker.stop_job(row["id"])
    service.store.add_event(row["id"], action.event)
    if not action.stops_run:
        service.worker.wake()  # after the event, so it precedes whatever the worker logs next
    return job_object(service.store.get("jobs", row["id"]))


@router.post("/{fine_tuning_job_id}/cancel", response_model=Job, summary="Cancel a job that has not finished")
def cancel_job(request: Request, fine_tuning_job_id: str):
    return transition_job(request, fine_tuning_job_id, ("validating_files", "queued", "running", "paused"), CANCEL)


@router.post("/{fine_tuning_job_id}/pause", response_model=Job, summary="Pause a queued or running job")
def pause_job(request: Request, fine_tuning_job_id: str):
    return transition_job(request, fine_tuning_job_id, ("validating_files", "queued", "running"), PAUSE)


@router.post("/{fine_tuning_job_id}/resume", response_model=Job, summary="Resume a paused job")
def resume_job(request: Request, fine_tuning_job_id: str):
    return transition_job(request, fine_tuning_job_id, ("paused",), RESUME)


@router.get("/{fine_tuning_job_id}/events", response_model=EventList, summary="A job's events, newest first")
def list_events(
    request: Request, fine_tuning_job_id: str, after: str | None = None, limit: int = Query(20, ge=1, le=1000)
):
    row = find_job(request, fine_tuning_job_id)
    rows, more = request.app.state.service.store.page("events", after, limit, "job_id = ?", (row["id"],))
    data = [
        {k: r[k] for k in ("id", "created_at", "level", "message", "type", "data")}
        | {"object": "fine_tuning.job.event"}
        for r in rows
    ]
    return {"object": "list", "data": data, "has_more": more}


@router.get(
    "/{fine_tuning_job_id}/checkpoints", response_model=CheckpointList, summary="A job's checkpoints, newest first"
)
def list_checkpoints(
    request: Request, fine_tuning_job_id: str, after: str | None = None, limit: int = Query(10, ge=1, le=100)
):
    row = find_job(request, fine_tuning_job_id)
    rows, more = request.app.state.service.store.page("checkpoints", after, limit, "job_id = ?", (row["id"],))
    data = [
        {
            "id": r["id"],
            "object": "fine_tuning.job.checkpoint",
            "created_at": r["created_at"],
            "fine_tuned_model_checkpoint": r["fine_tuned_model_checkpoint"],
            "fine_tuning_job_id": r["job_id"],
            "metrics": r["metrics"],
            "step_number": r["step_number"],
        }
        for r in rows
    ]
    return {
        "object": "list",
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
