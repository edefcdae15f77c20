"""Users (argon2 password hashes) and API tokens (stored as SHA-256 hashes, shown once)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.actor import Actor
from engine.db import reading, writing
from engine.errors import BadRequest, NotFound
from engine.systables import tokens, users

_hasher = PasswordHasher()
TOKEN_PREFIX = "crm_"
MIN_PASSWORD = 8


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def actor_from_row(row) -> Actor:
    return Actor(id=row["id"], username=row["username"], roles=tuple(row["roles"] or ()),
                 language=row["language"] or "en", manager=row["manager"], full_name=row["full_name"])


def create_user(engine, username: str, password: str, roles=("staff",), full_name=None, email=None,
                language=None, manager=None) -> int:
    if not username or len(username) > 64:
        raise BadRequest("a user name of 1 to 64 characters is required")
    if len(password or "") < MIN_PASSWORD:
        raise BadRequest(f"the password must have at least {MIN_PASSWORD} characters")
    with writing(engine) as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
            raise BadRequest(f"a user named {username!r} already exists")
        return conn.execute(users.insert().values(
            username=username, password_hash=_hasher.hash(password), roles=list(roles), full_name=full_name or username,
            email=email, language=language, manager=manager, active=True, created_at=_now())).inserted_primary_key[0]


def find_user(engine, username: str):
    with reading(engine) as conn:
        return conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()


def get_actor(engine, user_id: int) -> Actor | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id, users.c.active.is_(True))).mappings().first()
    return actor_from_row(row) if row else None


def authenticate(engine, username: str, password: str) -> Actor | None:
    row = find_user(engine, username or "")
    if row is None or not row["active"] or not row["password_hash"]:
        _hasher.hash("timing-equaliser")  # same cost whether or not the user exists
        return None
    try:
        _hasher.verify(row["password_hash"], password or "")
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        with writing(engine) as conn:
            conn.execute(users.update().where(users.c.id == row["id"]).values(password_hash=_hasher.hash(password)))
    return actor_from_row(row)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine, username: str, name: str | None = None) -> str:
    row = find_user(engine, username)
    if row is None:
        raise NotFound(f"no user named {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with writing(engine) as conn:
        conn.execute(tokens.insert().values(user_id=row["id"], token_hash=_digest(token), name=name,
                                            created_at=_now()))
    return token


def actor_for_token(engine, token: str) -> Actor | None:
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).join(tokens, tokens.c.user_id == users.c.id)
                           .where(tokens.c.token_hash == _digest(token), tokens.c.revoked_at.is_(None),
                                  users.c.active.is_(True))).mappings().first()
    return actor_from_row(row) if row else None


def list_users(engine):
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(users.c.id, users.c.username, users.c.full_name,
                                                        users.c.roles, users.c.active).order_by(users.c.username))
                .mappings()]


def set_language(engine, user_id: int, code: str) -> None:
    """Remember a user's interface language ('en' or 'zh')."""
    if code not in ("en", "zh"):
        raise BadRequest(f"unknown language {code!r}; use en or zh")
    with writing(engine) as conn:
        conn.execute(users.update().where(users.c.id == user_id).values(language=code))
