"""/v1/files: uploads are checked by the data pipeline; stored names are generated, never the client's."""

import os
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from tunelab.server.api_errors import ApiError, found
from tunelab.server.schemas import FileDeleted, FileList, FileObject
from tunelab.server.store import new_id, now

router = APIRouter(prefix="/v1/files", tags=["files"])
SUFFIXES = {".jsonl", ".json", ".csv", ".tsv", ".parquet"}
GENERATIVE_SCHEMAS = {"chat", "sharegpt", "alpaca", "completion", "text"}
CHUNK = 1 << 20


def file_object(row: dict) -> dict:
    return {k: row.get(k) for k in ("id", "bytes", "created_at", "filename", "purpose", "status", "status_details")} | {
        "object": "file"
    }


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
    if schema not in GENERATIVE_SCHEMAS:
        raise ApiError(
            400,
            f"Invalid file format: {schema} records cannot fine-tune a chat model; give chat (messages), "
            "instruction or prompt/completion records",
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


@router.post("", response_model=FileObject, summary="Upload a fine-tuning file")
async def create_file(request: Request, file: UploadFile = File(...), purpose: Literal["fine-tune"] = Form(...)):
    service = request.app.state.service
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
            "created_at": now(),
            "purpose": purpose,
            "status": "processed",
            "stored_name": stored_name,
        },
    )
    return file_object(row)


async def _run_sync(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


@router.get("", response_model=FileList, summary="List files")
def list_files(
    request: Request,
    purpose: str | None = None,
    after: str | None = None,
    limit: int = Query(10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
):
    store = request.app.state.service.store
    rows, more = store.page(
        "files",
        after,
        limit,
        "purpose = ?" if purpose else "",
        (purpose,) if purpose else (),
        newest_first=order == "desc",
    )
    data = [file_object(r) for r in rows]
    return {
        "object": "list",
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def find_file(request: Request, file_id: str) -> dict:
    return found(request.app.state.service.store.get("files", file_id), "file", file_id, "file_id")


@router.get("/{file_id}", response_model=FileObject, summary="Retrieve a file's metadata")
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
