"""/v1/files: uploads are checked by the data pipeline; stored names are generated, never the client's.

Files belong to the uploading key's project; a file past its `expires_after` is gone (404, and
its bytes are deleted the next time anyone looks).
"""

import os
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from tunelab.server.api_errors import ApiError, found
from tunelab.server.routes import list_page
from tunelab.server.schemas import FileDeleted, FileList, FileObject
from tunelab.server.store import new_id, now

router = APIRouter(prefix="/v1/files", tags=["files"])
SUFFIXES = {".jsonl", ".json", ".csv", ".tsv", ".parquet"}
FINE_TUNING_SCHEMAS = {"chat", "sharegpt", "alpaca", "completion", "text", "preference", "reinforcement"}
CHUNK = 1 << 20
EXPIRY_SECONDS = (3600, 30 * 24 * 3600)  # OpenAI's bounds on expires_after[seconds]


def file_object(row: dict) -> dict:
    """OpenAI's file object; fields the schema types as integers or strings are left out rather than null."""
    fields = ("id", "bytes", "created_at", "filename", "purpose", "status", "expires_at")
    return {k: row[k] for k in fields if row.get(k) is not None} | {"object": "file"}


def stored_path(service, row: dict) -> Path:
    return service.config.files_dir / row["stored_name"]


def safe_suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in SUFFIXES else ".jsonl"


def check_upload(path: Path, shown_name: str) -> None:
    """Refuse a file the trainer could not use: any rejected record, no usable one, or a non-generative schema."""
    from tunelab.data.config import DataConfig
    from tunelab.data.validate import validate_files
    from tunelab.errors import TunelabError

    try:
        report = validate_files([path], DataConfig())
    except TunelabError as exc:
        raise ApiError(
            400, f"Invalid file: {exc.message.replace(str(path), shown_name)}", "file", "invalid_file_format"
        ) from None
    if report["usable"] == 0 or report["rejected"]:
        reasons = "; ".join(report["summary"][:3]) or "the file holds no records"
        where = reasons.replace(f"{path.name}:", "line ")
        raise ApiError(
            400,
            f"Invalid file format: {report['rejected']} of {report['input']} records unusable ({where})",
            "file",
            "invalid_file_format",
        )
    schema = report["files"][0]["schema"]
    if schema not in FINE_TUNING_SCHEMAS:
        raise ApiError(
            400,
            f"Invalid file format: {schema} records cannot fine-tune a chat model; give chat (messages), "
            "instruction, prompt/completion, preference (DPO) or reinforcement records",
            "file",
            "invalid_file_format",
        )


async def save_upload(upload: UploadFile, target: Path, limit: int) -> int:
    size = 0
    with open(target, "wb") as handle:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"File is larger than the limit of {limit} bytes.", "file", "file_too_large")
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    return size


def expiry(anchor: str | None, seconds: int | None, created_at: int) -> int | None:
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise ApiError(400, "expires_after[anchor] must be 'created_at'", "expires_after.anchor")
    if seconds is None or not EXPIRY_SECONDS[0] <= seconds <= EXPIRY_SECONDS[1]:
        low, high = EXPIRY_SECONDS
        raise ApiError(400, f"expires_after[seconds] must be between {low} and {high}", "expires_after.seconds")
    return created_at + seconds


@router.post("", response_model=FileObject, response_model_exclude_none=True, summary="Upload a fine-tuning file")
async def create_file(
    request: Request,
    file: UploadFile = File(...),
    purpose: Literal["fine-tune"] = Form(...),
    expires_anchor: str | None = Form(None, alias="expires_after[anchor]"),
    expires_seconds: int | None = Form(None, alias="expires_after[seconds]"),
):
    service = request.app.state.service
    created_at = now()
    expires_at = expiry(expires_anchor, expires_seconds, created_at)
    declared = int(request.headers.get("content-length") or 0)
    if declared > service.config.max_upload_bytes + 64 * 1024:
        raise ApiError(
            413, f"File is larger than the limit of {service.config.max_upload_bytes} bytes.", "file", "file_too_large"
        )
    file_id = new_id("file")
    stored_name = file_id + safe_suffix(file.filename)
    incoming = service.config.files_dir / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    partial = incoming / stored_name
    try:
        size = await save_upload(file, partial, service.config.max_upload_bytes)
        await _run_sync(check_upload, partial, Path((file.filename or "upload").replace("\\", "/")).name)
        os.replace(partial, service.config.files_dir / stored_name)
    finally:
        partial.unlink(missing_ok=True)
    name = Path((file.filename or "upload.jsonl").replace("\\", "/")).name[:255] or "upload.jsonl"
    row = service.store.insert(
        "files",
        {
            "id": file_id,
            "filename": name,
            "bytes": size,
            "created_at": created_at,
            "purpose": purpose,
            "status": "processed",
            "stored_name": stored_name,
            "project": request.state.project,
            "expires_at": expires_at,
        },
    )
    return file_object(row)


async def _run_sync(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


@router.get("", response_model=FileList, response_model_exclude_none=True, summary="List files")
def list_files(
    request: Request,
    purpose: str | None = None,
    after: str | None = None,
    limit: int = Query(10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
):
    service = request.app.state.service
    remove_expired(service)
    where = "project = ?" + (" AND purpose = ?" if purpose else "")
    values = [request.state.project] + ([purpose] if purpose else [])
    rows, more = service.store.page("files", after, limit, where, values, newest_first=order == "desc")
    return list_page([file_object(r) for r in rows], more)


def remove_expired(service) -> None:
    for row in service.store.expired_files(now()):
        service.store.delete("files", row["id"])
        stored_path(service, row).unlink(missing_ok=True)


def find_file(request: Request, file_id: str) -> dict:
    service = request.app.state.service
    remove_expired(service)
    return found(service.store.owned("files", file_id, request.state.project), "file", file_id, "file_id")


@router.get("/{file_id}", response_model=FileObject, response_model_exclude_none=True, summary="Retrieve a file")
def retrieve_file(request: Request, file_id: str):
    return file_object(find_file(request, file_id))


@router.get(
    "/{file_id}/content",
    summary="Download a file's content",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def file_content(request: Request, file_id: str):
    row = find_file(request, file_id)
    return FileResponse(
        stored_path(request.app.state.service, row), media_type="application/octet-stream", filename=row["filename"]
    )


@router.delete("/{file_id}", response_model=FileDeleted, summary="Delete a file")
def delete_file(request: Request, file_id: str):
    service = request.app.state.service
    row = find_file(request, file_id)
    service.store.delete("files", file_id)
    stored_path(service, row).unlink(missing_ok=True)
    return {"id": file_id, "object": "file", "deleted": True}
