"""OpenAI-style errors: {"error": {"message", "type", "param", "code"}} with the HTTP status."""

from fastapi.responses import JSONResponse

TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    500: "server_error",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {
        "error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param, "code": code}
    }


def error_response(
    status: int, message: str, param: str | None = None, code: str | None = None, headers=None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


def not_found(kind: str, ident: str, param: str | None = None) -> ApiError:
    return ApiError(
        404, f"No {kind} found with id '{ident}'.", param, f"{kind.replace(' ', '_').replace('-', '_')}_not_found"
    )


def found(row: dict | None, kind: str, ident: str, param: str | None = None) -> dict:
    """The stored row, or the OpenAI-style 404 naming what was asked for."""
    if row is None:
        raise not_found(kind, ident, param)
    return row
