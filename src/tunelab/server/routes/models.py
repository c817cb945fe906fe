"""/v1/models: the base models and the fine-tuned models and checkpoints the caller's project may use."""

import shutil

from fastapi import APIRouter, Request

from tunelab.server.api_errors import ApiError
from tunelab.server.schemas import Model, ModelDeleted, ModelList

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelList, summary="Base and fine-tuned models")
def list_models(request: Request):
    return {"object": "list", "data": request.app.state.service.pool.listing(request.state.project)}


def find_model(request: Request, model: str) -> dict:
    for entry in request.app.state.service.pool.listing(request.state.project):
        if entry["id"] == model:
            return entry
    raise ApiError(404, f"The model '{model}' does not exist.", "model", "model_not_found")


@router.get("/{model:path}", response_model=Model, summary="Retrieve a model")
def retrieve_model(request: Request, model: str):
    return find_model(request, model)


@router.delete("/{model:path}", response_model=ModelDeleted, summary="Delete a fine-tuned model of your project")
def delete_model(request: Request, model: str):
    """The job stays (with its events and result files); its final model and checkpoints stop serving."""
    service = request.app.state.service
    find_model(request, model)
    job = service.store.job_of_model(model, request.state.project)
    if job is None:
        raise ApiError(
            403 if model in service.config.base_models() else 404,
            f"The model '{model}' is not a fine-tuned model of your project; only those can be deleted.",
            "model",
            "model_not_deletable",
        )
    service.store.update("jobs", job["id"], model_deleted=1)
    service.pool.forget(model, service.config.jobs_dir / job["id"] / "run")
    shutil.rmtree(service.config.jobs_dir / job["id"] / "checkpoints", ignore_errors=True)
    return {"id": model, "object": "model", "deleted": True}
