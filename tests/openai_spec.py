"""OpenAI's published OpenAPI document (../shared/openai-openapi/openapi.yaml) as JSON Schema validators, so tests
check every response body of the service against the schema the document gives for it.

The document mixes OpenAPI 3.0 habits into its 3.1 schemas (`nullable: true`, boolean
`exclusiveMinimum`); they are rewritten to their JSON Schema 2020-12 meaning before compiling, and
`$ref`s resolve inside the document.
"""

import functools
import json
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[2] / "shared" / "openai-openapi" / "openapi.yaml"


def _modern(node):
    if isinstance(node, list):
        return [_modern(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _modern(value) for key, value in node.items()}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True and bound in node:
            node[exclusive] = node.pop(bound)
        elif isinstance(node.get(exclusive), bool):
            node.pop(exclusive)
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


@functools.cache
def _components() -> dict:
    import yaml

    if not SPEC.is_file():
        pytest.skip(f"OpenAI's OpenAPI document is not at {SPEC} (../shared is absent)")
    with open(SPEC) as handle:
        spec = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _modern(json.loads(json.dumps({"components": spec["components"]}, default=str)))


@functools.cache
def _validator(name: str):
    import jsonschema_rs

    return jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}", **_components()})


def spec_errors(body: dict, schema_name: str) -> list[str]:
    """What in `body` breaks OpenAI's schema `schema_name` (empty when it conforms)."""
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in _validator(schema_name).iter_errors(body)]


def assert_conforms(body: dict, schema_name: str) -> None:
    errors = spec_errors(body, schema_name)
    assert not errors, f"{schema_name}: {errors[:5]}\n{json.dumps(body)[:1500]}"
