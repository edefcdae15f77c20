"""Users (argon2 password hashes) and API tokens (stored as SHA-256 hashes, shown once)."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine import clock
from engine.actor import Actor
from engine.db import reading, writing
from engine.errors import BadRequest, NotFound
from engine.systables import tokens, users

from . import signin  # noqa: F401  (its table joins the system metadata)

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
TOKEN_PREFIX = "crm_"
MIN_PASSWORD = 8


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def actor_from_row(row) -> Actor:
    return Actor(id=row["id"], username=row["username"], roles=tuple(row["roles"] or ()),
                 language=row["language"] or "en", manager=row["manager"], full_name=row["full_name"])


def create_user(engine, username: str, password: str, roles=("staff",), full_name=None, email=None,
                language=None, manager=None, team=None) -> int:
    if not username or len(username) > 64:
        raise BadRequest("a user name of 1 to 64 characters is required")
    if len(password or "") < MIN_PASSWORD:
        raise BadRequest(f"the password must have at least {MIN_PASSWORD} characters")
    with writing(engine) as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
            raise BadRequest(f"a user named {username!r} already exists")
        return conn.execute(users.insert().values(
            username=username, password_hash=_hasher.hash(password), roles=list(roles), full_name=full_name or username,
            email=email, language=language, manager=manager, team=team or None, active=True,
            created_at=_now())).inserted_primary_key[0]


def find_user(engine, username: str):
    with reading(engine) as conn:
        return conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()


def get_actor(engine, user_id: int) -> Actor | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id, users.c.active.is_(True))).mappings().first()
    return actor_from_row(row) if row else None


def check_password(engine, username: str, password: str):
    """('ok', row) | ('wrong_password', None) | ('disabled', None).

    A disabled account is named only to someone who knows its password; everyone else hears
    'wrong password', whether or not the user exists (the same hashing cost either way)."""
    row = find_user(engine, username or "")
    if row is None or not row["password_hash"]:
        _hasher.hash("timing-equaliser")  # same cost whether or not the user exists
        return "wrong_password", None
    try:
        _hasher.verify(row["password_hash"], password or "")
    except (VerificationError, InvalidHashError):
        return "wrong_password", None
    if not row["active"]:
        return "disabled", None
    if _hasher.check_needs_rehash(row["password_hash"]):
        with writing(engine) as conn:
            conn.execute(users.update().where(users.c.id == row["id"]).values(password_hash=_hasher.hash(password)))
    return "ok", row


def authenticate(engine, username: str, password: str) -> Actor | None:
    outcome, row = check_password(engine, username, password)
    return actor_from_row(row) if outcome == "ok" else None


def session_epoch(row) -> int:
    """The user's current session epoch (sessions made in an older one are signed out)."""
    return int(row.get("session_epoch") or 0) if row is not None else 0


def end_sessions(engine, user_id: int) -> None:
    """Sign the user out everywhere: every session and remember-me cookie made so far stops working."""
    with writing(engine) as conn:
        conn.execute(users.update().where(users.c.id == user_id)
                     .values(session_epoch=sa.func.coalesce(users.c.session_epoch, 0) + 1))


def _user_or_404(engine, username: str):
    row = find_user(engine, username)
    if row is None:
        raise NotFound(f"no user named {username!r}")
    return row


def disable_user(engine, username: str) -> int:
    """Disable the account at once: no sign-in, every session ended, every token revoked.
    Returns the number of tokens revoked."""
    row = _user_or_404(engine, username)
    with writing(engine) as conn:
        conn.execute(users.update().where(users.c.id == row["id"])
                     .values(active=False, session_epoch=sa.func.coalesce(users.c.session_epoch, 0) + 1))
        return conn.execute(tokens.update().where(tokens.c.user_id == row["id"], tokens.c.revoked_at.is_(None))
                            .values(revoked_at=clock.now())).rowcount


def enable_user(engine, username: str) -> None:
    """Let a disabled user sign in again (their old tokens stay revoked)."""
    row = _user_or_404(engine, username)
    with writing(engine) as conn:
        conn.execute(users.update().where(users.c.id == row["id"]).values(active=True))


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


TOKEN_TOUCH = dt.timedelta(minutes=1)   # last_used_at is written at most this often per token


def actor_for_token(engine, token: str) -> Actor | None:
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    with reading(engine) as conn:
        row = conn.execute(sa.select(users, tokens.c.id.label("_token_id"),
                                     tokens.c.last_used_at.label("_token_used"))
                           .join(tokens, tokens.c.user_id == users.c.id)
                           .where(tokens.c.token_hash == _digest(token), tokens.c.revoked_at.is_(None),
                                  users.c.active.is_(True))).mappings().first()
    if row is None:
        return None
    _touch_token(engine, row["_token_id"], row["_token_used"])
    return actor_from_row(row)


def _touch_token(engine, token_id: int, last_used) -> None:
    now = clock.now()
    if last_used is not None and now - last_used < TOKEN_TOUCH:
        return
    try:
        with writing(engine) as conn:
            t = tokens
            conn.execute(t.update().where(t.c.id == token_id,
                                          sa.or_(t.c.last_used_at.is_(None), t.c.last_used_at < now - TOKEN_TOUCH))
                         .values(last_used_at=now))
    except sa.exc.OperationalError:      # a busy database: the next request records it
        log.warning("could not record the use of token #%s", token_id)


def list_tokens(engine, username: str) -> list[dict]:
    row = _user_or_404(engine, username)
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(
            sa.select(tokens.c.id, tokens.c.name, tokens.c.created_at, tokens.c.last_used_at, tokens.c.revoked_at)
            .where(tokens.c.user_id == row["id"]).order_by(tokens.c.id)).mappings()]


def revoke_tokens(engine, username: str, token_id: int | None = None) -> int:
    """Revoke every live token of the user (or only `token_id`); the number revoked."""
    row = _user_or_404(engine, username)
    q = tokens.update().where(tokens.c.user_id == row["id"], tokens.c.revoked_at.is_(None))
    if token_id is not None:
        q = q.where(tokens.c.id == token_id)
    with writing(engine) as conn:
        return conn.execute(q.values(revoked_at=clock.now())).rowcount


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
