"""What the commands that work on the database directly share: which database (`--mongo-uri`,
`--mongo-db`, or MONGO_URI, MONGO_DB, as the service reads them), the connection, and failing with a
message on stderr and exit status 1 (a database that cannot be reached included: no traceback)."""

from typing import Annotated, NoReturn

import typer
from pymongo.errors import PyMongoError

from mongo.connection import connect_mongo, mongo_client
from settings import get_settings

_target: dict[str, str | None] = {"uri": None, "db": None}


def database_options(
    mongo_uri: Annotated[
        str | None,
        typer.Option(
            "--mongo-uri",
            envvar="MONGO_URI",
            help="the service's MongoDB (default mongodb://127.0.0.1:27017/, where `make run` puts it); "
            "for a stack on other ports, its address",
            show_default=False,
        ),
    ] = None,
    mongo_db: Annotated[
        str | None,
        typer.Option(
            "--mongo-db", envvar="MONGO_DB", help="its database (default chatbot)", show_default=False
        ),
    ] = None,
) -> None:
    """Where the service's accounts are."""
    _target.update(uri=mongo_uri, db=mongo_db)


def connect() -> None:
    settings = get_settings()
    uri = _target["uri"] or settings.mongo_uri
    connect_mongo(uri, _target["db"] or settings.mongo_db)
    try:
        mongo_client().admin.command("ping")
    except PyMongoError as exc:
        fail(
            f"cannot reach MongoDB at {uri} ({type(exc).__name__}); is the service running? "
            "Point at it with --mongo-uri or MONGO_URI."
        )


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
