"""Small wire types several resources share: ids of stored documents, pages of a listing."""

import unicodedata
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, Field

ObjectIdStr = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$", description="a stored document's id")]

# Bounded so that the number of documents skipped, (page - 1) * page_size, stays a small integer
# for MongoDB: a page number near 2**63 is a 422, not an overflow deep in the driver.
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 100
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1 is the first page")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]


def _one_folder(name: str) -> str:
    """A name that becomes a folder (an adapter's, a dataset's) may not climb out of its parent."""
    if not name.strip("."):
        raise ValueError("a name cannot be only dots ('.', '..')")
    if any(char in "/\\" or unicodedata.category(char).startswith("C") for char in name):
        raise ValueError("a name cannot hold '/', '\\' or control characters")
    return name


FolderName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_one_folder)]

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    page: int
    page_size: int
