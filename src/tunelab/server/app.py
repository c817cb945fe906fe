"""The FastAPI application: OpenAI-shaped routes, bearer-key check, OpenAI error bodies, the worker's lifetime."""

import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from tunelab import __version__
from tunelab.errors import TunelabError
from tunelab.server.api_errors import ApiError, error_response
from tunelab.server.config import ServeConfig
from tunelab.server.model_pool import ModelPool
from tunelab.server.openapi import openai_errors_in_schema
from tunelab.server.routes import files, inference, jobs
from tunelab.server.store import Store
from tunelab.server.worker import Worker


@dataclass
class Service:
    config: ServeConfig
    store: Store
    worker: Worker
    pool: ModelPool


def open_service(config: ServeConfig) -> Service:
    for folder in (config.home, config.files_dir, config.jobs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    store = Store(config.home / "jobs.db")
    return Service(config, store, Worker(config, store), ModelPool(config, store))


def create_app(config: ServeConfig) -> FastAPI:
    service = open_service(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.worker.start()
        yield
        service.worker.shutdown()

    app = FastAPI(
        title="tunelab",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="OpenAI-compatible files, fine-tuning jobs and inference over tunelab's local trainer.",
    )
    app.state.service = service
    for module in (files, jobs, inference):
        app.include_router(module.router)
    add_error_handlers(app)
    add_key_check(app, config.api_keys)
    app.openapi = lambda: openai_errors_in_schema(app, bool(config.api_keys))
    return app


def add_key_check(app: FastAPI, keys: list[str]) -> None:
    if not keys:
        return
    encoded = [key.encode() for key in keys]

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not any(secrets.compare_digest(given.strip().encode(), k) for k in encoded):
            return error_response(
                401,
                "Incorrect or missing API key: pass it as 'Authorization: Bearer KEY'.",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_response(400, "Invalid request: the body is not valid JSON.", None, "invalid_json")
        param = ".".join(str(p) for p in first["loc"][1:]) or None
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in problems[:3])
        return error_response(400, f"Invalid request: {message}", param, "invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = (
            f"Unknown request URL: {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        )
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(TunelabError)
    async def tunelab_error(request: Request, exc: TunelabError):
        return error_response(400, str(exc))
