"""Users (a name and a role) and their API keys (hash, prefix, revoked or not), and their queries."""

import contextlib

from mongoengine import DateTimeField, Document, NotUniqueError, ObjectIdField, StringField

from accounts.keys import key_hash, key_prefix, new_key
from mongo.fields import utcnow

ROLES = ("user", "admin")
BOOTSTRAP_ADMIN = "admin"


class UserExists(ValueError):
    pass


class User(Document):
    meta = {"collection": "users", "indexes": [{"fields": ["name"], "unique": True}]}

    name = StringField(required=True, max_length=64)
    role = StringField(required=True, choices=ROLES, default="user")
    created_at = DateTimeField(default=utcnow)


class ApiKey(Document):
    meta = {
        "collection": "api_keys",
        "indexes": [{"fields": ["key_hash"], "unique": True}, "prefix", "user_id"],
    }

    key_hash = StringField(required=True)
    prefix = StringField(required=True)
    user_id = ObjectIdField(required=True)
    label = StringField(default="", max_length=100)
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField()


def create_user(name: str, role: str = "user") -> User:
    try:
        return User(name=name, role=role).save()
    except NotUniqueError:
        raise UserExists(f"a user named {name!r} already exists") from None


def find_user(name: str) -> User | None:
    return User.objects(name=name).first()


def list_users() -> list[User]:
    return list(User.objects.order_by("name"))


def _store_key(user: User, key: str, label: str) -> ApiKey:
    return ApiKey(key_hash=key_hash(key), prefix=key_prefix(key), user_id=user.id, label=label).save()


def create_key(user: User, label: str = "") -> tuple[ApiKey, str]:
    """A new key for the user: the stored record, and the key itself (shown once, never stored)."""
    key = new_key()
    return _store_key(user, key, label), key


def key_user(key: str) -> tuple[User, ApiKey] | None:
    """Whose key this is, if it is a live one."""
    record = ApiKey.objects(key_hash=key_hash(key), revoked_at=None).first()
    if record is None:
        return None
    user = User.objects(id=record.user_id).first()
    return (user, record) if user is not None else None


def list_keys(user: User | None = None) -> list[ApiKey]:
    query = ApiKey.objects(user_id=user.id) if user is not None else ApiKey.objects
    return list(query.order_by("created_at"))


def revoke_key(prefix: str) -> int:
    """Revoke every live key with this prefix; how many were."""
    return ApiKey.objects(prefix=prefix, revoked_at=None).update(set__revoked_at=utcnow())


def ensure_admin_key(key: str) -> User:
    """The operator's key (ADMIN_API_KEY) as a key of the first admin, created on first use."""
    user = find_user(BOOTSTRAP_ADMIN)
    if user is None:
        try:
            user = create_user(BOOTSTRAP_ADMIN, "admin")
        except UserExists:  # another API process won the race
            user = find_user(BOOTSTRAP_ADMIN)
    if not ApiKey.objects(key_hash=key_hash(key)).first():
        with contextlib.suppress(NotUniqueError):
            _store_key(user, key, "ADMIN_API_KEY")
    return user
