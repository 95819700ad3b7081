"""Character Card data (the `data` object of V2/V3 cards), as SillyTavern and other frontends write it.

Cards in the wild are loosely typed: nulls where strings belong, numbers for versions, a string for a
list of keys. They are read leniently (null becomes the field's default, numbers become strings) and
every key this schema does not know is kept (`extra="allow"`), so a card exports back with all of it.
Dumped, the fields a spec requires are always there, optional ones only when the card had them.
"""

from typing import Any, ClassVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

# The fields of a Character Card V1: the whole card, and in V2/V3 a copy beside `data`.
V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")


def _split_keys(value: Any) -> Any:
    """Some tools write a comma-separated string where the spec has a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class CardModel(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    # Fields the spec requires: filled with their defaults when a card leaves them out.
    SPEC_REQUIRED: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, field in cls.model_fields.items():
            nullable = type(None) in get_args(field.annotation)
            missing = name not in data and name in cls.SPEC_REQUIRED
            if (
                missing or (name in data and data[name] is None and not nullable)
            ) and not field.is_required():
                data[name] = field.get_default(call_default_factory=True)
        return data

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Optional fields a card left out stay out (the serialization schema is still the model's)."""
        known = type(self).model_fields
        return {
            key: value
            for key, value in handler(self).items()
            if key in self.model_fields_set or key not in known
        }

    def card_dict(self) -> dict[str, Any]:
        """The JSON form a card file holds: what was given, the spec's required fields, unknown keys."""
        return self.model_dump(mode="json")


class LorebookEntry(CardModel):
    SPEC_REQUIRED = ("keys", "content", "extensions", "enabled", "insertion_order")

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int = 0
    case_sensitive: bool | None = None
    name: str | None = None
    priority: int | None = None
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    secondary_keys: list[str] | None = None
    constant: bool | None = None
    position: str | None = Field(default=None, description="before_char or after_char")

    _keys = field_validator("keys", "secondary_keys", mode="before")(_split_keys)


class CharacterBook(CardModel):
    SPEC_REQUIRED = ("extensions", "entries")

    name: str | None = None
    description: str | None = None
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[LorebookEntry] = Field(default_factory=list)


class CardData(CardModel):
    """A character as a V2 card's `data` object; V3-only fields (nickname, assets, ...) are kept as extras."""

    SPEC_REQUIRED = (
        "description",
        "personality",
        "scenario",
        "first_mes",
        "mes_example",
        "creator_notes",
        "system_prompt",
        "post_history_instructions",
        "alternate_greetings",
        "tags",
        "creator",
        "character_version",
        "extensions",
    )

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = Field(default="", description="the greeting a new conversation opens with")
    mes_example: str = Field(default="", description="example dialogue, blocks separated by <START>")
    creator_notes: str = ""
    system_prompt: str = Field(
        default="", description="replaces the default system prompt; {{original}} keeps it"
    )
    post_history_instructions: str = Field(default="", description="sent after the history, before the reply")
    alternate_greetings: list[str] = Field(default_factory=list)
    character_book: CharacterBook | None = None
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)

    _tags = field_validator("tags", mode="before")(_split_keys)

    @field_validator("alternate_greetings", mode="before")
    @classmethod
    def _one_greeting(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
