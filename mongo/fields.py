"""What the documents of every aggregate share: the time they stamp, and a field for free-form JSON.

JsonField holds JSON that MongoDB-protocol servers may not store as documents: card data carries
arbitrary keys (a `.` or a leading `$` in an extension's key) and may nest arrays in arrays;
FerretDB v1 refuses both, and MongoDB limits them. Kept as a JSON string, such data survives every
server unchanged; the document still exposes it as a dict.
"""

import json
from datetime import UTC, datetime
from typing import Any

from mongoengine.base import BaseField


def utcnow() -> datetime:
    return datetime.now(UTC)


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
