"""/openapi.json as served: FastAPI's document with OpenAI's error responses instead of 422."""

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tunelab.server.schemas import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def openai_errors_in_schema(app: FastAPI, with_key: bool) -> dict:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in components["ErrorBody"].pop("$defs", {}).items():
        components[name] = sub
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            responses.pop("422", None)
            responses["400"] = _error("Invalid request (OpenAI error body)")
            if "{" in path:
                responses["404"] = _error("No such object")
            if path.endswith(("/cancel", "/pause", "/resume")):
                responses["409"] = _error("The job is not in a state that allows this")
            if path == "/v1/files" and method == "post":
                responses["413"] = _error("Upload larger than the limit")
            if with_key:
                responses["401"] = _error("Missing or wrong API key")
    if with_key:
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema
