"""A mongoengine field for free-form JSON that MongoDB-protocol servers may not store as documents.

Card data carries arbitrary keys (a `.` or a leading `$` in an extension's key) and may nest arrays
in arrays; FerretDB v1 refuses both, and MongoDB limits them. Kept as a JSON string, such data
survives every server unchanged; the document still exposes it as a dict.
"""

import json
from typing import Any

from mongoengine.base import BaseField


class JsonField(BaseField):
    def to_mongo(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def to_python(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def prepare_query_value(self, op: str, value: Any) -> Any:
        return self.to_mongo(value)

    def validate(self, value: Any) -> None:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            self.error(f"not JSON-serialisable: {exc}")
