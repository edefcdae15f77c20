"""Governance entries of the audit log (H6) besides record changes: sign-ins, configuration,
user administration from the command line; and who may read the log.

The actions of the log (record changes: `create`, `update`, `delete`, `restore`, `transition`):
  signin | signin_failed | signout      platform_/signin.py; detail "address=…; reason=…"
  config.reload | config.reload_failed  POST /api/v1/admin/reload; changes {"digest": [old, new]}
  config.apply | config.purge           schema steps applied (start-up, reload, `flask crm migrate`); a studio
                                        or pack change: detail "version N: message; files: ..." (configstore.py)
  user.create | user.update | user.roles | user.password | user.disable | user.enable | user.transfer
  team.* | region.*                     platform_/org.py (the org admin) and the CLI
  token.create | token.revoke           API tokens (CLI)
Entries about a user carry entity `sys_user` and the user's id as record id, detail = the user name.
"""
from __future__ import annotations

import datetime as dt
import getpass
import re

from engine import audit
from engine.actor import Actor
from engine.db import writing
from engine.errors import BadRequest, Forbidden

USER_ENTITY = "sys_user"
EXPORT_LIMIT = 100_000    # entries in one CSV export
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def cli_actor() -> Actor:
    """Who acts from the command line: the operating-system account, as "cli:<name>"."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "?"
    return Actor(id=None, username=f"cli:{name}"[:64], roles=("admin",))


def who(by) -> tuple:
    """(user id, user name) of an Actor, or of nobody (the system)."""
    if by is None:
        return None, "system"
    return by.id, (by.username or "system")[:64]


def append(conn, action: str, by=None, **fields) -> None:
    """One entry in the caller's transaction, acted by `by` (an Actor, or None: the system)."""
    uid, name = who(by)
    audit.append(conn, action, user_id=uid, username=name, **fields)


def record(engine, action: str, by=None, **fields) -> None:
    """One entry in its own transaction (after a change made elsewhere)."""
    with writing(engine) as conn:
        append(conn, action, by, **fields)


def user_entry(action: str, by, username: str, changes=None, extra: str | None = None):
    """An `audit(conn, user_id, *_)` callback for platform_/auth.py writing one entry about a user."""
    def log(conn, uid, *rest):
        detail = username + (f"; {extra}" if extra else "")
        if action.startswith("token.") and rest:
            detail += f"; {'token #' if action == 'token.create' else 'revoked '}{rest[0]}"
        append(conn, action, by, entity=USER_ENTITY, record_id=uid, changes=changes, detail=detail)
    return log


def steps_summary(steps, digest: str | None = None) -> str:
    from engine.migrator import summary
    return summary(steps, digest)


# ---- who reads the log --------------------------------------------------------------------
def may_read(store, actor) -> bool:
    """Administrators and the roles access.yaml names in `audit_readers`."""
    if actor is None:
        return False
    reader = getattr(getattr(store, "policy", None), "may_read_audit", None)
    return bool(actor.is_admin or (reader is not None and reader(actor)))


def require_reader(store, actor, message: str | None = None) -> None:
    if not may_read(store, actor):
        raise Forbidden(message or "Only an administrator or a role named in access.yaml `audit_readers` may read "
                                   "the audit trail.")


def visible_changes(store, actor, entry: dict) -> dict:
    """The entry's changes without the fields the reader may not see (field permissions, H4)."""
    changes = entry.get("changes") or {}
    entity = store.config.entities.get(entry.get("entity") or "") if store is not None else None
    if entity is None or not changes:
        return changes
    hidden = store.hidden_fields(entity, actor)
    return {k: v for k, v in changes.items() if k not in hidden} if hidden else changes


def day_bounds(since: str | None, until: str | None, zone=None) -> tuple:
    """(since, until) as naive UTC instants from YYYY-MM-DD days in `zone` (None: UTC); `until` is
    inclusive (the end of that day). BadRequest names the bad one."""
    out = []
    for key, raw, extra in (("since", since, 0), ("until", until, 1)):
        if raw in (None, ""):
            out.append(None)
            continue
        try:
            if not DAY.fullmatch(str(raw).strip()):
                raise ValueError
            day = dt.date.fromisoformat(str(raw).strip())
        except ValueError:
            raise BadRequest(f"{key}: a date YYYY-MM-DD, not {str(raw)[:40]!r}") from None
        start = dt.datetime.combine(day + dt.timedelta(days=extra), dt.time(0), tzinfo=zone or dt.timezone.utc)
        out.append(start.astimezone(dt.timezone.utc).replace(tzinfo=None))
    if out[0] is not None and out[1] is not None and out[1] <= out[0]:
        raise BadRequest("until: the range ends before it starts")
    return out[0], out[1]
