"""The service's routes, one module per API area."""


def list_page(data: list[dict], has_more: bool) -> dict:
    """OpenAI's cursor-paginated list object: the page, whether more follow, and its first and last ids."""
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
