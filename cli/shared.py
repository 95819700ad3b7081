"""What the commands that work on the database directly share: the connection, and failing with a
message on stderr and exit status 1."""

from typing import NoReturn

import typer

from mongo.connection import connect_mongo
from settings import get_settings


def connect() -> None:
    settings = get_settings()
    connect_mongo(settings.mongo_uri, settings.mongo_db)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
