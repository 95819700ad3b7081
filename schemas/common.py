"""Small wire types several resources share: ids of stored documents, pages of a listing."""

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

ObjectIdStr = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$", description="a stored document's id")]

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    page: int
    page_size: int
