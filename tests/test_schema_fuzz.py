"""Every operation of the OpenAPI spec, called with examples generated from it (schemathesis), as a
plain user: whatever a stranger sends, the service answers with a 4xx that says why, never a 5xx.

Examples are bounded (a few per operation) and generation is cut to one token, so the run stays short."""

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from embedded.stack import EmbeddedStack
from tests.support.clients import bearer

EXAMPLES_PER_OPERATION = 6
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


def one_token(value: Any) -> Any:
    """The generated body with every token budget cut to 1 (a batch's items' too)."""
    if isinstance(value, dict):
        return {key: 1 if key in TOKEN_FIELDS else one_token(item) for key, item in value.items()}
    if isinstance(value, list):
        return [one_token(item) for item in value]
    return value


def server_errors(operation, key: str) -> str | None:
    """The first server error the operation's generated examples find, else None."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def call(case: schemathesis.Case) -> None:
        case.body = one_token(case.body)
        case.call_and_validate(headers=bearer(key), checks=[not_a_server_error], timeout=120)

    try:
        call()
    except Exception as exc:  # schemathesis's failure report: the request and the answer
        return f"{operation.label}: {exc}"
    return None


def test_no_operation_answers_a_server_error(stack: EmbeddedStack, api_key: str) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]

    failures = [found for operation in operations if (found := server_errors(operation, api_key))]

    assert len(operations) > 40
    assert failures == []
