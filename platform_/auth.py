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
from engine.tablecache import TableCache

from . import signin  # noqa: F401  (its table joins the system metadata)

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
TOKEN_PREFIX = "crm_"
MIN_PASSWORD = 10
# Refused whatever else they contain; compared in lower case, with and without punctuation.
COMMON_PASSWORDS = frozenset({
    "password123", "password1234", "password12345", "passw0rd123", "p@ssw0rd123", "1234567890a", "a1234567890",
    "123456789a", "a123456789", "abc1234567", "abcd123456", "abc123456789", "aa123456789", "qq123456789",
    "qwerty1234", "qwerty12345", "qwerty123456", "qwertyuiop1", "1qaz2wsx3edc", "1q2w3e4r5t", "zaq12wsxcde",
    "iloveyou123", "welcome123", "welcome1234", "letmein1234", "admin12345", "admin123456", "administrator1",
    "woaini1314", "woaini123456", "5201314abc", "changeme123", "test123456", "secret1234"})


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def actor_from_row(row) -> Actor:
    return Actor(id=row["id"], username=row["username"], roles=tuple(row["roles"] or ()),
                 language=row["language"] or "en", manager=row["manager"], full_name=row["full_name"])


def password_problems(password: str, username: str | None = None, lang: str = "en") -> list[str]:
    """What is wrong with a new password, in `lang` ('en' or 'zh'); empty when it is acceptable.

    The policy: at least MIN_PASSWORD characters, a letter and a digit, not a common password, and
    not built on the user name: with the user name (3+ characters, any case) taken out, what is left
    must still have 8 characters, a letter and a digit (so `admin-Passw0rd` is fine, `admin1234567` is not)."""
    zh = lang == "zh"
    pw = password or ""
    out = []
    if len(pw) < MIN_PASSWORD:
        out.append(f"密码至少需要 {MIN_PASSWORD} 个字符" if zh else f"the password must have at least {MIN_PASSWORD} characters")
    if not (any(c.isalpha() for c in pw) and any(c.isdigit() for c in pw)):
        out.append("密码必须同时包含字母和数字" if zh else "the password must contain both a letter and a digit")
    lowered = pw.lower()
    if lowered in COMMON_PASSWORDS or "".join(c for c in lowered if c.isalnum()) in COMMON_PASSWORDS:
        out.append("这是一个常见密码，请换一个不易猜到的密码" if zh else "this is a common password; choose one that is harder to guess")
    name = (username or "").strip().lower()
    if pw and len(name) >= 3 and name in lowered:
        rest = lowered.replace(name, "")
        if len(rest) < 8 or not (any(c.isalpha() for c in rest) and any(c.isdigit() for c in rest)):
            out.append("密码不能以用户名为主体：去掉用户名后仍需至少 8 个字符，且包含字母和数字" if zh else
                       "the password must not be built on the user name: without it, at least 8 characters "
                       "with a letter and a digit must remain")
    return out


def check_password_policy(password: str, username: str | None = None, lang: str = "en") -> None:
    problems = password_problems(password, username, lang)
    if problems:
        raise BadRequest(("；" if lang == "zh" else "; ").join(problems))


def create_user(engine, username: str, password: str, roles=("staff",), full_name=None, email=None,
                language=None, manager=None, team=None, region=None, *, lang: str = "en", audit=None) -> int:
    """Create an active user. `audit(conn, user_id)` runs in the same transaction (platform_/org.py)."""
    if not username or len(username) > 64:
        raise BadRequest("用户名需要 1 到 64 个字符" if lang == "zh" else "a user name of 1 to 64 characters is required")
    check_password_policy(password, username, lang)
    with writing(engine) as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
            raise BadRequest(f"用户 {username!r} 已存在" if lang == "zh" else f"a user named {username!r} already exists")
        uid = conn.execute(users.insert().values(
            username=username, password_hash=_hasher.hash(password), roles=list(roles), full_name=full_name or username,
            email=email, language=language, manager=manager, team=team or None, region=region or None, active=True,
            created_at=_now())).inserted_primary_key[0]
        if audit is not None:
            audit(conn, uid)
        return uid


def set_password(engine, username: str, password: str, *, lang: str = "en", sign_out: bool = True, audit=None) -> None:
    """Reset a user's password (the policy applies); with `sign_out`, every session of theirs ends."""
    row = _user_or_404(engine, username)
    check_password_policy(password, username, lang)
    values = {"password_hash": _hasher.hash(password)}
    if sign_out:
        values["session_epoch"] = sa.func.coalesce(users.c.session_epoch, 0) + 1
    with writing(engine) as conn:
        conn.execute(users.update().where(users.c.id == row["id"]).values(**values))
        if audit is not None:
            audit(conn, row["id"])


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


def disable_user(engine, username: str, audit=None) -> int:
    """Disable the account at once: no sign-in, every session ended, every token revoked.
    Returns the number of tokens revoked. `audit(conn, user_id, revoked)` runs in the same transaction."""
    row = _user_or_404(engine, username)
    with writing(engine) as conn:
        conn.execute(users.update().where(users.c.id == row["id"])
                     .values(active=False, session_epoch=sa.func.coalesce(users.c.session_epoch, 0) + 1))
        revoked = conn.execute(tokens.update().where(tokens.c.user_id == row["id"], tokens.c.revoked_at.is_(None))
                               .values(revoked_at=clock.now())).rowcount
        if audit is not None:
            audit(conn, row["id"], revoked)
        return revoked


def enable_user(engine, username: str, audit=None) -> None:
    """Let a disabled user sign in again (their old tokens stay revoked)."""
    row = _user_or_404(engine, username)
    with writing(engine) as conn:
        conn.execute(users.update().where(users.c.id == row["id"]).values(active=True))
        if audit is not None:
            audit(conn, row["id"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine, username: str, name: str | None = None, audit=None) -> str:
    """A new API token, shown once. `audit(conn, user_id, token_id)` runs in the same transaction."""
    row = find_user(engine, username)
    if row is None:
        raise NotFound(f"no user named {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with writing(engine) as conn:
        tid = conn.execute(tokens.insert().values(user_id=row["id"], token_hash=_digest(token), name=name,
                                                  created_at=_now())).inserted_primary_key[0]
        if audit is not None:
            audit(conn, row["id"], tid)
    return token


TOKEN_TOUCH = dt.timedelta(minutes=1)   # last_used_at is written at most this often per token


TOKEN_CACHE_TTL = 2.0       # seconds a token's user is trusted without asking the database again
_tokens = TableCache([users, tokens], TOKEN_CACHE_TTL)   # (engine id, digest) → (actor, token id, last used)


def actor_for_token(engine, token: str) -> Actor | None:
    """The user an API token acts for; the lookup is cached for TOKEN_CACHE_TTL seconds (a revoke,
    disable or role change in this process empties the cache at once)."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(token)

    def load():
        with reading(engine) as conn:
            row = conn.execute(sa.select(users, tokens.c.id.label("_token_id"),
                                         tokens.c.last_used_at.label("_token_used"))
                               .join(tokens, tokens.c.user_id == users.c.id)
                               .where(tokens.c.token_hash == digest, tokens.c.revoked_at.is_(None),
                                      users.c.active.is_(True))).mappings().first()
        return (actor_from_row(row), row["_token_id"], row["_token_used"]) if row is not None else None
    hit = _tokens.get((id(engine), digest), load)
    if hit is None:
        return None
    actor, token_id, used = hit
    _touch_token(engine, token_id, used)        # at most once a minute (its write empties the cache)
    return actor


def _touch_token(engine, token_id: int, last_used):
    """Record the token's use, at most once a minute; returns when it was last recorded."""
    now = clock.now()
    if last_used is not None and now - last_used < TOKEN_TOUCH:
        return last_used
    try:
        with writing(engine) as conn:
            t = tokens
            conn.execute(t.update().where(t.c.id == token_id,
                                          sa.or_(t.c.last_used_at.is_(None), t.c.last_used_at < now - TOKEN_TOUCH))
                         .values(last_used_at=now))
    except sa.exc.OperationalError:      # a busy database: the next request records it
        log.warning("could not record the use of token #%s", token_id)
        return last_used
    return now


def list_tokens(engine, username: str) -> list[dict]:
    row = _user_or_404(engine, username)
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(
            sa.select(tokens.c.id, tokens.c.name, tokens.c.created_at, tokens.c.last_used_at, tokens.c.revoked_at)
            .where(tokens.c.user_id == row["id"]).order_by(tokens.c.id)).mappings()]


def revoke_tokens(engine, username: str, token_id: int | None = None, audit=None) -> int:
    """Revoke every live token of the user (or only `token_id`); the number revoked.
    `audit(conn, user_id, revoked)` runs in the same transaction when any was revoked."""
    row = _user_or_404(engine, username)
    q = tokens.update().where(tokens.c.user_id == row["id"], tokens.c.revoked_at.is_(None))
    if token_id is not None:
        q = q.where(tokens.c.id == token_id)
    with writing(engine) as conn:
        n = conn.execute(q.values(revoked_at=clock.now())).rowcount
        if n and audit is not None:
            audit(conn, row["id"], n)
        return n


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
