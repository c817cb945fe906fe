"""The FastAPI application: OpenAI-shaped routes, bearer keys and their projects, OpenAI error bodies, the worker's
lifetime."""

import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from tunelab import __version__
from tunelab.errors import TunelabError
from tunelab.server.api_errors import ApiError, error_response
from tunelab.server.config import DEFAULT_PROJECT, ServeConfig
from tunelab.server.model_pool import ModelPool
from tunelab.server.openapi import openai_errors_in_schema
from tunelab.server.routes import checkpoints, files, graders, inference, jobs, models
from tunelab.server.store import Store
from tunelab.server.webhooks import Webhooks
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
    webhooks = Webhooks(config.webhook_url, config.webhook_secret)
    return Service(config, store, Worker(config, store, webhooks), ModelPool(config, store))


def import_ml_libraries() -> None:
    """Import transformers and peft once, before the first request: two threads importing them for the first time at
    once (a chat and a job validation) can see a half-initialised module and fail with an ImportError."""
    import peft  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401


def create_app(config: ServeConfig) -> FastAPI:
    service = open_service(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import_ml_libraries()
        service.worker.start()
        yield
        service.worker.shutdown()
        service.worker.webhooks.close()

    app = FastAPI(
        title="tunelab",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="OpenAI-compatible files, fine-tuning jobs and inference over tunelab's local trainer.",
    )
    app.state.service = service
    for module in (files, jobs, checkpoints, graders, models, inference):
        app.include_router(module.router)
    add_error_handlers(app)
    add_key_check(app, config.projects_by_key())
    app.openapi = lambda: openai_errors_in_schema(app, bool(config.api_keys))
    return app


def add_key_check(app: FastAPI, projects: dict[str, str]) -> None:
    """Every request carries its key's project in request.state.project (proj_default when the service is open)."""
    encoded = [(key.encode(), project) for key, project in projects.items()]

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if not encoded:
            request.state.project = DEFAULT_PROJECT
            return await call_next(request)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        matched = [p for k, p in encoded if secrets.compare_digest(given.strip().encode(), k)]
        if scheme.lower() != "bearer" or not matched:
            return error_response(
                401,
                "Incorrect or missing API key: pass it as 'Authorization: Bearer KEY'.",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.project = matched[0]
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
        if first.get("type") == "extra_forbidden":  # OpenAI's words for a parameter it does not know
            return error_response(400, f"Unrecognized request argument supplied: {param}", param, "unknown_parameter")
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
