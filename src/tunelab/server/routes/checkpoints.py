"""/v1/fine_tuning/checkpoints/{checkpoint}/permissions: a project shares one of its checkpoints (or final models)
with other projects, which then list and chat with it. Only the owning project sees or changes the grants."""

from typing import Literal

from fastapi import APIRouter, Query, Request

from tunelab.server.api_errors import found
from tunelab.server.routes import list_page
from tunelab.server.schemas import PermissionCreate, PermissionDeleted, PermissionList
from tunelab.server.store import new_id, now

router = APIRouter(prefix="/v1/fine_tuning/checkpoints", tags=["fine-tuning"])


def own_checkpoint(request: Request, name: str) -> dict:
    row = request.app.state.service.store.checkpoint_of_project(name, request.state.project)
    return found(row, "checkpoint", name, "fine_tuned_model_checkpoint")


def permission_object(row: dict) -> dict:
    return {
        "id": row["id"],
        "object": "checkpoint.permission",
        "created_at": row["created_at"],
        "project_id": row["project_id"],
    }


def listing(rows: list[dict], more: bool) -> dict:
    return list_page([permission_object(r) for r in rows], more)


@router.post("/{checkpoint:path}/permissions", response_model=PermissionList, summary="Share a checkpoint")
def grant(request: Request, checkpoint: str, body: PermissionCreate):
    store = request.app.state.service.store
    own_checkpoint(request, checkpoint)
    rows = [
        store.insert(
            "permissions", {"id": new_id("cp"), "checkpoint": checkpoint, "project_id": project, "created_at": now()}
        )
        for project in dict.fromkeys(body.project_ids)
    ]
    return listing(rows, False)


@router.get("/{checkpoint:path}/permissions", response_model=PermissionList, summary="Who a checkpoint is shared with")
def list_permissions(
    request: Request,
    checkpoint: str,
    project_id: str | None = None,
    after: str | None = None,
    limit: int = Query(10, ge=1, le=100),
    order: Literal["ascending", "descending"] = "descending",
):
    own_checkpoint(request, checkpoint)
    where = "checkpoint = ?" + (" AND project_id = ?" if project_id else "")
    values = [checkpoint] + ([project_id] if project_id else [])
    rows, more = request.app.state.service.store.page(
        "permissions", after, limit, where, values, newest_first=order == "descending"
    )
    return listing(rows, more)


@router.delete(
    "/{checkpoint:path}/permissions/{permission_id}", response_model=PermissionDeleted, summary="Stop sharing"
)
def revoke(request: Request, checkpoint: str, permission_id: str):
    store = request.app.state.service.store
    own_checkpoint(request, checkpoint)
    row = store.get("permissions", permission_id)
    found(row if row and row["checkpoint"] == checkpoint else None, "permission", permission_id, "permission_id")
    store.delete("permissions", permission_id)
    return {"id": permission_id, "object": "checkpoint.permission", "deleted": True}
