"""The request and event schemas' own rules, checked without a server: what they accept, normalise
and refuse, and the Redis names the API and the workers must agree on."""

import pytest
from pydantic import ValidationError

from jobs.keys import job_cancel_key, job_channel, job_log_key, queue_keys, workers_key
from schemas.batches import BatchItemRequest, BatchResult
from schemas.cards import CardData, LorebookEntry
from schemas.chat import LumimaidRequest
from schemas.events import JobEvent
from schemas.openai import ChatCompletionRequest, RequestMessage
from tests.support.clients import RACHEL

STORED_ID = "0123456789abcdef01234567"


def refused_fields(model: type, data: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    return [error["loc"] for error in refused.value.errors()]


def test_the_original_body_is_accepted_with_a_drive_thumbnail() -> None:
    assert LumimaidRequest.model_validate(RACHEL).image == RACHEL["image"]


@pytest.mark.parametrize(
    "image",
    [
        "https://example.com/thumbnail?id=abc",
        "https://drive.google.com/thumbnail?id=abc&x=1",
        "xhttps://drive.google.com/thumbnail?id=abc",
    ],
)
def test_an_image_that_is_not_a_drive_thumbnail_is_refused(image: str) -> None:
    with pytest.raises(ValidationError, match="must be a Google Drive thumbnail URL"):
        LumimaidRequest.model_validate({**RACHEL, "image": image})


def test_every_missing_character_field_is_named() -> None:
    assert refused_fields(LumimaidRequest, {"input_data": "Hi"}) == [
        ("character_name",),
        ("greeting",),
        ("context",),
        ("image",),
    ]


@pytest.mark.parametrize("stored", ["character_id", "conversation_id"])
def test_a_stored_character_or_conversation_needs_no_character_fields(stored: str) -> None:
    request = LumimaidRequest.model_validate({"input_data": "Hi", stored: STORED_ID})

    assert getattr(request, stored) == STORED_ID and request.character_name is None


def test_a_batch_item_must_end_with_the_users_turn() -> None:
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]

    with pytest.raises(ValidationError, match="the last message must be the user's"):
        BatchItemRequest.model_validate({"character": "Rachel", "messages": turns})
    assert (
        BatchItemRequest.model_validate({"character": "Rachel", "messages": turns[:1]}).messages[-1].content
        == "Hi"
    )


def test_an_unfinished_batch_items_empty_sub_documents_read_as_none() -> None:
    result = BatchResult.model_validate(
        {"index": 0, "custom_id": None, "job_id": "j", "state": "pending", "usage": {}, "error": {}}
    )
    failed = BatchResult.model_validate(
        {
            "index": 0,
            "custom_id": None,
            "job_id": "j",
            "state": "error",
            "error": {"code": "worker_lost", "message": "y"},
        }
    )

    assert result.usage is None and result.error is None
    assert failed.error.code == "worker_lost"


def test_a_card_with_comma_separated_tags_and_one_greeting_gets_lists() -> None:
    card = CardData.model_validate({"name": "Luna", "tags": " moon, ,night ", "alternate_greetings": "Hi!"})

    assert card.tags == ["moon", "night"]
    assert card.alternate_greetings == ["Hi!"]
    assert CardData.model_validate({"name": "Luna", "tags": ["a, b"]}).tags == ["a, b"]


def test_a_card_keeps_what_it_was_given_and_fills_what_the_spec_requires() -> None:
    entry = LorebookEntry.model_validate({"keys": ["moon"], "content": "lore", "comment": None, "mood": 3})

    # A null the spec allows stays null; optional fields left out stay out; unknown keys are kept.
    assert entry.card_dict() == {
        "keys": ["moon"],
        "content": "lore",
        "extensions": {},
        "enabled": True,
        "insertion_order": 0,
        "comment": None,
        "mood": 3,
    }


def test_a_null_where_the_spec_wants_a_value_becomes_the_default() -> None:
    entry = LorebookEntry.model_validate({"keys": None, "content": "lore", "enabled": None})

    assert entry.keys == [] and entry.enabled is True


def test_only_done_and_error_end_a_stream() -> None:
    def event(name: str, data: dict) -> JobEvent:
        return JobEvent.model_validate({"id": 0, "event": name, "data": data})

    assert event("done", {"finish_reason": "stop"}).is_final
    assert event("error", {"code": "worker_lost", "message": "y"}).is_final
    assert not event("token", {"text": "a", "index": 0}).is_final
    assert not event("started", {"worker": "w"}).is_final


@pytest.mark.parametrize(
    ("content", "text"),
    [("Hi", "Hi"), (None, ""), ([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}], "Hello")],
)
def test_an_openai_message_text_joins_its_parts(content, text: str) -> None:
    assert RequestMessage.model_validate({"role": "user", "content": content}).text == text


@pytest.mark.parametrize(("stop", "expected"), [(None, []), ("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_openai_stop_is_one_string_or_a_list(stop, expected: list[str]) -> None:
    body = {"model": "lumimaid", "messages": [{"role": "user", "content": "Hi"}], "stop": stop}

    assert ChatCompletionRequest.model_validate(body).stop == expected


def test_an_empty_openai_stop_sequence_is_refused() -> None:
    body = {"model": "lumimaid", "messages": [{"role": "user", "content": "Hi"}], "stop": ["a", ""]}

    with pytest.raises(ValidationError, match="stop sequences must not be empty"):
        ChatCompletionRequest.model_validate(body)


def test_redis_names_shared_by_the_api_and_the_workers() -> None:
    assert job_channel("j1") == "chatbot:job:j1:events"
    assert job_cancel_key("j1") == "chatbot:job:j1:cancel"
    assert job_log_key("j1") == "chatbot:job:j1:log"
    assert workers_key("cpu") == "chatbot:workers:cpu"
    assert queue_keys("cpu") == ["cpu", "cpu:3", "cpu:6", "cpu:9"]
    assert queue_keys("cpu", up_to_priority=0) == ["cpu"]
    assert queue_keys("cuda0", up_to_priority=6) == ["cuda0", "cuda0:3", "cuda0:6"]
