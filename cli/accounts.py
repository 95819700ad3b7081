"""`chatbot users` and `chatbot keys`: accounts managed on the database directly (MONGO_URI,
MONGO_DB), for the operator; the admin routes (`/admin/...`) do the same over HTTP."""

from typing import Annotated

import typer

from cli.shared import connect, database_options, fail
from mongo.accounts import (
    ROLES,
    UserExists,
    create_key,
    create_user,
    find_user,
    list_keys,
    list_users,
    revoke_key,
)

users = typer.Typer(help="Users: create and list them.", no_args_is_help=True, callback=database_options)
keys = typer.Typer(
    help="API keys: create (shown once), list, revoke.", no_args_is_help=True, callback=database_options
)

UserName = Annotated[str, typer.Argument(help="the user's name")]


@users.command("create")
def users_create(
    name: UserName, role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")] = "user"
) -> None:
    if role not in ROLES:
        fail(f"role must be one of {', '.join(ROLES)}")
    connect()
    try:
        create_user(name, role)
    except UserExists as exc:
        fail(str(exc))
    typer.echo(f"created {role} {name}")


@users.command("list")
def users_list() -> None:
    connect()
    for user in list_users():
        typer.echo(f"{user.name}\t{user.role}\t{user.created_at:%Y-%m-%d %H:%M}")


@keys.command("create")
def keys_create(name: UserName, label: Annotated[str, typer.Option(help="what the key is for")] = "") -> None:
    """Print a new key for the user: it is shown this once, and only its hash is kept."""
    connect()
    user = find_user(name)
    if user is None:
        fail(f"no user named {name!r}")
    record, key = create_key(user, label)
    typer.echo(key)
    typer.echo(f"prefix {record.prefix}: keep the key now, it cannot be shown again", err=True)


@keys.command("list")
def keys_list(name: Annotated[str | None, typer.Argument(help="only this user's keys")] = None) -> None:
    connect()
    user = find_user(name) if name else None
    if name and user is None:
        fail(f"no user named {name!r}")
    owners = {u.id: u.name for u in list_users()}
    for record in list_keys(user):
        state = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "live"
        typer.echo(f"{record.prefix}\t{owners.get(record.user_id, '?')}\t{state}\t{record.label}")


@keys.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix, as listed")]) -> None:
    connect()
    if not revoke_key(prefix):
        fail(f"no live key with prefix {prefix!r}")
    typer.echo(f"revoked {prefix}")
