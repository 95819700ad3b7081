"""OpenAPI descriptions of request bodies that a route reads by hand (so FastAPI does not add their
models to the components for a $ref to find)."""

from typing import Any

from pydantic import BaseModel


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its $defs put in place."""
    schema = model.model_json_schema(ref_template="{model}")
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            return resolve(defs[node["$ref"]]) if "$ref" in node else {k: resolve(v) for k, v in node.items()}
        return [resolve(value) for value in node] if isinstance(node, list) else node

    return resolve(schema)
