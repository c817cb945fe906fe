"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request

from tunelab.server.api_errors import ApiError, found
from tunelab.server.job_methods import JOB_METHODS, JobMethod
from tunelab.server.routes import list_page
from tunelab.server.schemas import CheckpointList, EventList, Job, JobCreate, JobList
from tunelab.server.store import new_id, now

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])
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
    "integrations",
)
METADATA_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512
INTEGRATIONS = {"mlflow": "tunelab's own tracker: the job's run is recorded to the service's MLflow store"}


def job_object(row: dict) -> dict:
    return {k: row.get(k) for k in JOB_FIELDS} | {"object": "fine_tuning.job", "organization_id": "org-tunelab"}


def project_of(request: Request) -> str:
    return request.state.project


def method_settings(body: JobCreate) -> tuple[JobMethod, dict | None, dict | None]:
    """The job's method, the client's hyperparameters for it (the legacy top-level ones for supervised), its grader."""
    method_type = body.method.type if body.method else "supervised"
    settings = getattr(body.method, method_type) if body.method else None
    if method_type == "reinforcement" and settings is None:
        raise ApiError(
            400,
            "method.reinforcement.grader is required for a reinforcement job",
            "method.reinforcement",
            "missing_grader",
        )
    if body.hyperparameters and method_type != "supervised":
        raise ApiError(
            400,
            f"top-level hyperparameters apply to supervised jobs; give them as method.{method_type}.hyperparameters",
            "hyperparameters",
            "invalid_hyperparameter",
        )
    hyperparameters = settings.hyperparameters if settings and settings.hyperparameters else body.hyperparameters
    grader = checked_grader(settings.grader) if method_type == "reinforcement" else None
    return JOB_METHODS[method_type], hyperparameters, grader


def checked_grader(grader: dict) -> dict:
    from tunelab.errors import ConfigError
    from tunelab.graders import validate_grader

    try:
        validate_grader(grader, "method.reinforcement.grader")
    except ConfigError as exc:
        raise ApiError(400, str(exc), exc.message.partition(":")[0], "invalid_grader") from None
    return grader


def check_metadata(metadata: dict[str, str] | None) -> None:
    if not metadata:
        return
    if len(metadata) > METADATA_PAIRS:
        raise ApiError(400, f"metadata holds {len(metadata)} pairs; at most {METADATA_PAIRS}", "metadata")
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_CHARS or len(value) > METADATA_VALUE_CHARS:
            raise ApiError(
                400,
                f"metadata[{key[:20]!r}]: keys are at most {METADATA_KEY_CHARS} characters and values at most "
                f"{METADATA_VALUE_CHARS}",
                f"metadata.{key[:64]}",
            )


def checked_integrations(integrations: list[dict] | None) -> list[dict] | None:
    """Integrations tunelab honours; one it cannot (wandb needs its cloud service) is refused, never dropped."""
    for i, integration in enumerate(integrations or []):
        kind = integration.get("type")
        if kind not in INTEGRATIONS:
            reason = (
                "needs api.wandb.ai, which this offline service does not reach" if kind == "wandb" else "is unknown"
            )
            raise ApiError(
                400,
                f"integrations[{i}]: the {kind!r} integration {reason}; tunelab offers "
                + "; ".join(f"{{'type': '{k}'}}: {v}" for k, v in INTEGRATIONS.items()),
                f"integrations[{i}].type",
                "unsupported_integration",
            )
    return integrations or None


def check_file(store, project: str, file_id: str | None, param: str) -> None:
    if file_id is None:
        return
    row = found(store.owned("files", file_id, project), "file", file_id, param)
    if row["purpose"] != "fine-tune":
        raise ApiError(
            400, f"File {file_id} has purpose {row['purpose']!r}, not 'fine-tune'.", param, "invalid_file_purpose"
        )


@router.post("", response_model=Job, summary="Create a fine-tuning job")
def create_job(request: Request, body: JobCreate):
    service, project = request.app.state.service, project_of(request)
    job_method, hyperparameters, grader = method_settings(body)
    bases = service.config.base_models()
    if body.model not in bases:
        raise ApiError(
            404,
            f"The model '{body.model}' does not exist or cannot be fine-tuned here; base models: {', '.join(bases)}.",
            "model",
            "model_not_found",
        )
    check_file(service.store, project, body.training_file, "training_file")
    check_file(service.store, project, body.validation_file, "validation_file")
    check_metadata(body.metadata)
    given = job_method.given(hyperparameters)
    method = {
        "type": job_method.type,
        job_method.type: {"hyperparameters": given} | ({"grader": grader} if grader else {}),
    }
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
            "hyperparameters": legacy_hyperparameters(given),
            "method": method,
            "metadata": body.metadata,
            "integrations": checked_integrations(body.integrations),
            "status": "validating_files",
            "project": project,
        },
    )
    service.store.add_event(
        row["id"],
        f"Validating training file: {body.training_file}"
        + (f" and validation file: {body.validation_file}" if body.validation_file else ""),
    )
    service.worker.wake()
    return job_object(row)


def legacy_hyperparameters(values: dict) -> dict:
    """The deprecated top-level field mirrors the method's epochs, batch size and rate multiplier."""
    return {key: values[key] for key in ("n_epochs", "batch_size", "learning_rate_multiplier")}


def metadata_filter(request: Request) -> tuple[str, list]:
    """SQL for `metadata[KEY]=VALUE` query parameters (all must match), or `metadata=null` (jobs without any)."""
    clauses, values = [], []
    for name, value in request.query_params.multi_items():
        if name == "metadata" and value == "null":
            clauses.append("metadata IS NULL")
        elif name.startswith("metadata[") and name.endswith("]"):
            clauses.append("json_extract(metadata, ?) = ?")
            values += ['$."' + name[9:-1].replace('"', '""') + '"', value]
    return " AND ".join(clauses), values


@router.get("", response_model=JobList, summary="List fine-tuning jobs, newest first")
def list_jobs(request: Request, after: str | None = None, limit: int = Query(20, ge=1, le=100)):
    where, values = metadata_filter(request)
    where = " AND ".join(c for c in ("project = ?", where) if c)
    rows, more = request.app.state.service.store.page("jobs", after, limit, where, [project_of(request), *values])
    return {"object": "list", "data": [job_object(r) for r in rows], "has_more": more}


def find_job(request: Request, job_id: str) -> dict:
    row = request.app.state.service.store.owned("jobs", job_id, project_of(request))
    return found(row, "fine-tuning job", job_id, "fine_tuning_job_id")


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
    changes = action.changes(service, row)
    if not service.store.update("jobs", row["id"], allowed, **changes):
        raise ApiError(
            409,
            f"Job {row['id']} {action.refusal.format(status=row['status'])}",
            "fine_tuning_job_id",
            action.code,
        )
    if action.stops_run:
        service.worker.stop_job(row["id"])
    service.store.add_event(row["id"], action.event)
    service.worker.webhooks.job_finished(changes["status"], row["id"])
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
        {k: r[k] for k in ("id", "created_at", "level", "message", "type")}
        | {"data": r["data"] or {}, "object": "fine_tuning.job.event"}
        for r in rows
    ]
    return {"object": "list", "data": data, "has_more": more}


@router.get(
    "/{fine_tuning_job_id}/checkpoints",
    response_model=CheckpointList,
    response_model_exclude_none=True,  # metrics the step has no figure for are left out: the schema wants numbers
    summary="A job's checkpoints, newest first",
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
            "metrics": {k: v for k, v in r["metrics"].items() if v is not None},
            "step_number": r["step_number"],
        }
        for r in rows
    ]
    return list_page(data, more)
