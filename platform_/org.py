"""The organisation an administrator models (H1, H7): teams (a tree), regions, users and their roles.

Every change goes through here, is refused unless the acting user is an administrator, and writes
one audit entry (`engine.audit.append`) in the transaction of the change itself:

  team.create | team.update | team.delete          entity sys_team,   detail = the team id
  region.create | region.update | region.delete    entity sys_region, detail = the region id
  user.create    entity sys_user, record_id = the user's id; changes = every field set (roles too)
  user.update    profile fields (full_name, email, language, manager, team, region): {field: [before, after]}
  user.roles     a permission change, {"roles": [before, after]}: its own entry so auditors can filter on it
  user.password  a password reset (the password is never logged)
  user.disable | user.enable
  user.transfer  a summary of records and tasks handed to another user (the store audits each record)

Messages follow the acting user's language (`actor.language`, en or zh). Users are named by their
user name (managers too); teams and regions by their short id (`east`, `sales-hz`).
"""
from __future__ import annotations

import re

import sqlalchemy as sa

from engine import audit
from engine.access import BUILTIN_ROLES, role_label  # noqa: F401  (role_label: re-exported for ui/org.py)
from engine.db import reading, writing
from engine.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from engine.model import label_of
from engine.systables import regions as regions_t
from engine.systables import teams as teams_t
from engine.systables import users

from . import auth
from .signin import login_attempts

ID_RX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
EMAIL_RX = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
PROFILE = ("full_name", "email", "language", "manager", "team", "region")
KINDS = {"team": (teams_t, "sys_team"), "region": (regions_t, "sys_region")}


def _t(lang: str, en: str, zh: str, **kw) -> str:
    return (zh if lang == "zh" else en).format(**kw)


def require_admin(actor) -> None:
    if actor is None or not actor.is_admin:
        lang = getattr(actor, "language", "en")
        raise Forbidden(_t(lang, "Only an administrator may manage users, teams and regions.",
                           "只有管理员可以管理用户、团队和区域。"))


def _invalid(lang: str, errors: dict):
    sep = "；" if lang == "zh" else "; "
    head = _t(lang, "Please correct: ", "请更正：")
    return ValidationFailed(errors, head + sep.join(f"{k}: {v}" for k, v in errors.items()))


def _who(actor) -> dict:
    return {"user_id": actor.id, "username": actor.username}


def _text(data: dict, key: str, lang: str, errors: dict, limit: int = 200) -> str | None:
    v = data.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        errors[key] = _t(lang, "must be text", "应为文本")
        return None
    v = v.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
        errors[key] = _t(lang, "contains a control character, which is not allowed", "包含不允许的控制字符")
        return None
    if len(v) > limit:
        errors[key] = _t(lang, "at most {n} characters", "最多 {n} 个字符", n=limit)
        return None
    return v or None


def _unknown(data: dict, allowed, lang: str, errors: dict) -> None:
    if not isinstance(data, dict):
        raise BadRequest(_t(lang, "The request body must be an object of fields.", "请求内容必须是字段对象。"))
    for k in data:
        if k not in allowed:
            errors[k] = _t(lang, "unknown field", "未知字段")


def label(row, lang: str) -> str:
    """A team's or region's label in `lang` (the other language, then the id, when it has none)."""
    if row is None:
        return ""
    return label_of({"en": row.get("label_en"), "zh": row.get("label_zh")}, lang, row.get("id") or "")


# ---- teams and regions ------------------------------------------------------------------------
def listing(engine, kind: str) -> list[dict]:
    """Every team (or region) with `members` (users in it) and, for teams, `children` (sub-teams)."""
    table, _entity = KINDS[kind]
    col = users.c[kind]
    with reading(engine) as conn:
        rows = [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]
        members = dict(conn.execute(sa.select(col, sa.func.count()).where(col.is_not(None)).group_by(col)).all())
        names = {r.id: (r.username, r.full_name) for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.full_name))}
    children: dict = {}
    for r in rows:
        if r.get("parent"):
            children[r["parent"]] = children.get(r["parent"], 0) + 1
    for r in rows:
        r["members"] = members.get(r["id"], 0)
        if kind == "team":
            r["children"] = children.get(r["id"], 0)
            login, full = names.get(r.get("manager"), (None, None))
            r["manager_username"], r["manager_name"] = login, (full or login)
    return rows


def team_tree(engine) -> list[dict]:
    """Teams depth first (parents before their sub-teams, siblings by id), each with `depth`."""
    rows = listing(engine, "team")
    ids = {r["id"] for r in rows}
    kids: dict = {}
    for r in rows:
        kids.setdefault(r["parent"] if r.get("parent") in ids else None, []).append(r)
    out, seen = [], set()

    def walk(parent, depth):
        for r in kids.get(parent, []):
            if r["id"] in seen:
                continue
            seen.add(r["id"])
            out.append({**r, "depth": depth})
            walk(r["id"], depth + 1)
    walk(None, 0)
    out += [{**r, "depth": 0} for r in rows if r["id"] not in seen]     # a loop made outside this module
    return out


def _missing(kind: str, ident: str, lang: str) -> NotFound:
    return NotFound(_t(lang, "There is no {kind} {id!r}.", "没有{kind} {id!r}。", id=ident,
                       kind=kind if lang != "zh" else {"team": "团队", "region": "区域"}[kind]))


def get(engine, kind: str, ident: str, lang: str = "en") -> dict:
    table, _entity = KINDS[kind]
    with reading(engine) as conn:
        row = conn.execute(sa.select(table).where(table.c.id == ident)).mappings().first()
    if row is None:
        raise _missing(kind, ident, lang)
    return dict(row)


def _user_id(conn, username, lang: str, errors: dict, key: str):
    if username in (None, ""):
        return None
    if not isinstance(username, str):
        errors[key] = _t(lang, "a user name", "应为用户名")
        return None
    uid = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
    if uid is None:
        errors[key] = _t(lang, "there is no user named {n!r}", "没有名为 {n!r} 的用户", n=username)
    return uid


def _check_parent(conn, tid: str, parent: str | None, lang: str, errors: dict) -> None:
    """The parent must exist and must not be the team itself or one of its sub-teams."""
    if parent is None:
        return
    if parent == tid:
        errors["parent"] = _t(lang, "a team cannot be its own parent", "团队不能以自己为上级")
        return
    found = conn.execute(sa.select(teams_t.c.id).where(teams_t.c.id == parent)).scalar()
    if found is None:
        errors["parent"] = _t(lang, "there is no team {p!r}", "没有团队 {p!r}", p=parent)
        return
    seen, at = set(), parent
    while at is not None and at not in seen:
        if at == tid:
            errors["parent"] = _t(lang, "{p!r} is inside {t!r}: a team cannot be placed under its own sub-team",
                                  "{p!r} 是 {t!r} 的下级团队：团队不能放在自己的下级之下", p=parent, t=tid)
            return
        seen.add(at)
        at = conn.execute(sa.select(teams_t.c.parent).where(teams_t.c.id == at)).scalar()


def _fields_of(kind: str, data: dict, lang: str, errors: dict, conn, ident: str) -> dict:
    values = {}
    for key in ("label_en", "label_zh"):
        if key in data:
            values[key] = _text(data, key, lang, errors)
    if kind == "team":
        if "parent" in data:
            parent = _text(data, "parent", lang, errors, 64)
            _check_parent(conn, ident, parent, lang, errors)
            values["parent"] = parent
        if "manager" in data:
            values["manager"] = _user_id(conn, data.get("manager"), lang, errors, "manager")
    return values


def create(engine, actor, kind: str, data: dict) -> dict:
    """Create a team or region from {id, label_en, label_zh[, parent, manager]}."""
    require_admin(actor)
    lang, table, entity = actor.language, *KINDS[kind]
    errors: dict = {}
    _unknown(data, ("id", "label_en", "label_zh", "parent", "manager") if kind == "team"
             else ("id", "label_en", "label_zh"), lang, errors)
    ident = data.get("id")
    if not isinstance(ident, str) or not ID_RX.match(ident.strip()):
        errors["id"] = _t(lang, "a short code of letters, digits, '-', '_' or '.' (at most 64), e.g. east",
                          "应为由字母、数字、“-”、“_”或“.”组成的简短代码（最多 64 个字符），例如 east")
        ident = None
    else:
        ident = ident.strip()
    with writing(engine) as conn:
        values = _fields_of(kind, data, lang, errors, conn, ident or "")
        if not values.get("label_en") and not values.get("label_zh") and "label_en" not in errors:
            errors["label_en"] = _t(lang, "give a label in English or Chinese", "请填写英文或中文名称")
        if ident and conn.execute(sa.select(table.c.id).where(table.c.id == ident)).first():
            errors["id"] = _t(lang, "{id!r} is already used", "{id!r} 已被使用", id=ident)
        if errors:
            raise _invalid(lang, errors)
        conn.execute(table.insert().values(id=ident, **values))
        audit.append(conn, f"{kind}.create", **_who(actor), entity=entity, detail=ident,
                     changes={k: (None, v) for k, v in values.items() if v is not None})
    return get(engine, kind, ident, lang)


def update(engine, actor, kind: str, ident: str, data: dict) -> dict:
    """Change labels (and a team's parent or manager); the id stays."""
    require_admin(actor)
    lang, table, entity = actor.language, *KINDS[kind]
    errors: dict = {}
    _unknown(data, ("id", "label_en", "label_zh", "parent", "manager") if kind == "team"
             else ("id", "label_en", "label_zh"), lang, errors)
    if "id" in data and data["id"] != ident:
        errors["id"] = _t(lang, "the id cannot change; create a new one and move the users",
                          "代码不能修改；请新建一个并把用户移过去")
    with writing(engine) as conn:
        before = conn.execute(sa.select(table).where(table.c.id == ident)).mappings().first()
        if before is None:
            raise _missing(kind, ident, lang)
        values = _fields_of(kind, data, lang, errors, conn, ident)
        after = {**dict(before), **values}
        if not after.get("label_en") and not after.get("label_zh") and "label_en" not in errors:
            errors["label_en"] = _t(lang, "give a label in English or Chinese", "请填写英文或中文名称")
        if errors:
            raise _invalid(lang, errors)
        changes = {k: (before[k], v) for k, v in values.items() if before[k] != v}
        if changes:
            conn.execute(table.update().where(table.c.id == ident).values(**values))
            audit.append(conn, f"{kind}.update", **_who(actor), entity=entity, detail=ident, changes=changes)
    return get(engine, kind, ident, lang)


def delete(engine, actor, kind: str, ident: str) -> None:
    """Remove a team or region nobody uses: refused (409) while users or sub-teams still name it."""
    require_admin(actor)
    lang, table, entity = actor.language, *KINDS[kind]
    with writing(engine) as conn:
        before = conn.execute(sa.select(table).where(table.c.id == ident)).mappings().first()
        if before is None:
            raise _missing(kind, ident, lang)
        members = conn.execute(sa.select(sa.func.count()).select_from(users)
                               .where(users.c[kind] == ident)).scalar() or 0
        subs = 0
        if kind == "team":
            subs = conn.execute(sa.select(sa.func.count()).select_from(teams_t)
                                .where(teams_t.c.parent == ident)).scalar() or 0
        if members or subs:
            what = {"team": ("Team", "团队"), "region": ("Region", "区域")}[kind]
            raise Conflict(_t(lang, "{w} {id!r} is still used by {u} user(s) and {s} sub-team(s); move them "
                                    "elsewhere first.", "{w} {id!r} 仍被 {u} 个用户和 {s} 个下级团队使用；请先把它们移走。",
                              w=what[lang == "zh"], id=ident, u=members, s=subs))
        conn.execute(table.delete().where(table.c.id == ident))
        audit.append(conn, f"{kind}.delete", **_who(actor), entity=entity, detail=ident,
                     changes={k: (v, None) for k, v in dict(before).items() if v is not None and k != "id"})


# ---- users ------------------------------------------------------------------------------------
def available_roles(config) -> list[tuple[str, dict]]:
    """[(role id, label)] an administrator may give: the pack's roles, and `admin` always."""
    roles = list(config.pack.roles) if config is not None and config.pack is not None else []
    if not roles:
        roles = [("admin", BUILTIN_ROLES["admin"]), ("staff", BUILTIN_ROLES["staff"])]
    elif "admin" not in dict(roles):
        roles.insert(0, ("admin", BUILTIN_ROLES["admin"]))
    return roles


def _last_sign_ins(conn, names) -> dict:
    if not names:
        return {}
    t = login_attempts
    return dict(conn.execute(sa.select(t.c.username, sa.func.max(t.c.at)).where(
        t.c.username.in_(names), t.c.outcome == "ok").group_by(t.c.username)).all())


def _with_refs(conn, rows) -> list[dict]:
    ids = {r["manager"] for r in rows if r["manager"]}
    managers = {r.id: (r.username, r.full_name) for r in conn.execute(
        sa.select(users.c.id, users.c.username, users.c.full_name).where(users.c.id.in_(ids)))} if ids else {}
    last = _last_sign_ins(conn, [r["username"] for r in rows])
    out = []
    for r in rows:
        d = {k: r[k] for k in ("id", "username", "full_name", "email", "language", "manager", "team", "region",
                                "active", "created_at")}
        d["roles"] = list(r["roles"] or [])
        login, full = managers.get(r["manager"], (None, None))
        d["manager_username"], d["manager_name"] = login, (full or login)
        d["last_sign_in"] = last.get(r["username"])
        out.append(d)
    return out


def list_users(engine, q: str | None = None, page: int = 1, per_page: int = 25) -> dict:
    """A page of users by user name; `q` searches user name, full name and e-mail."""
    conds = []
    if q and q.strip():
        q = q.strip()
        conds.append(sa.or_(users.c.username.icontains(q, autoescape=True),
                            users.c.full_name.icontains(q, autoescape=True),
                            users.c.email.icontains(q, autoescape=True)))
    with reading(engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(users).where(*conds)).scalar_one()
        rows = conn.execute(sa.select(users).where(*conds).order_by(users.c.username)
                            .limit(per_page).offset((page - 1) * per_page)).mappings().all()
        items = _with_refs(conn, rows)
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def people(engine) -> list[dict]:
    """Every user as a picker needs them: id, user name, full name, active; by name."""
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.full_name, users.c.active)
            .order_by(users.c.full_name, users.c.username)).mappings()]


def get_user(engine, username: str, lang: str = "en") -> dict:
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        if row is None:
            raise NotFound(_t(lang, "There is no user named {n!r}.", "没有名为 {n!r} 的用户。", n=username))
        return _with_refs(conn, [row])[0]


def user_json(u: dict) -> dict:
    """A user as the admin API shows it: the manager by user name, times as ISO 8601."""
    def iso(v):
        return v.isoformat() + "Z" if v is not None else None
    return {"id": u["id"], "username": u["username"], "full_name": u["full_name"], "email": u["email"],
            "roles": u["roles"], "language": u["language"], "manager": u["manager_username"], "team": u["team"],
            "region": u["region"], "active": bool(u["active"]), "created_at": iso(u["created_at"]),
            "last_sign_in": iso(u["last_sign_in"])}


def _profile(conn, config, data: dict, lang: str, errors: dict, before: dict | None) -> dict:
    """Checked values of the profile fields and roles present in `data` (stored form: manager as id)."""
    values = {}
    if "full_name" in data:
        values["full_name"] = _text(data, "full_name", lang, errors, 255)
    if "email" in data:
        email = _text(data, "email", lang, errors, 254)
        if email and not EMAIL_RX.match(email):
            errors["email"] = _t(lang, "{v} is not an e-mail address", "{v} 不是有效的邮箱地址", v=email)
        values["email"] = email
    if "language" in data:
        value = data.get("language") or None
        if value not in (None, "en", "zh"):
            errors["language"] = _t(lang, "en or zh", "应为 en 或 zh")
        values["language"] = value
    if "manager" in data:
        uid = _user_id(conn, data.get("manager"), lang, errors, "manager")
        if uid is not None and before is not None:
            seen, at = set(), uid
            while at is not None and at not in seen:       # the manager chain must not come back to the user
                if at == before["id"]:
                    errors["manager"] = _t(lang, "a user cannot report to themselves, directly or through others",
                                           "用户不能直接或间接向自己汇报")
                    break
                seen.add(at)
                at = conn.execute(sa.select(users.c.manager).where(users.c.id == at)).scalar()
        values["manager"] = uid
    for kind in ("team", "region"):
        if kind in data:
            value = _text(data, kind, lang, errors, 64)
            table = KINDS[kind][0]
            changed = before is None or value != before.get(kind)
            if value and changed and conn.execute(sa.select(table.c.id).where(table.c.id == value)).first() is None:
                errors[kind] = _t(lang, "there is no {k} {v!r}", "没有{k} {v!r}", v=value,
                                  k=kind if lang != "zh" else {"team": "团队", "region": "区域"}[kind])
            values[kind] = value
    if "roles" in data:
        roles = data.get("roles")
        allowed = dict(available_roles(config))
        if isinstance(roles, str):
            roles = [r.strip() for r in roles.split(",") if r.strip()]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            errors["roles"] = _t(lang, "a list of roles", "应为角色列表")
        elif not roles:
            errors["roles"] = _t(lang, "choose at least one role", "请至少选择一个角色")
        elif any(r not in allowed for r in roles):
            bad = ", ".join(r for r in roles if r not in allowed)
            errors["roles"] = _t(lang, "not a role of the pack: {b} (choose from {a})",
                                 "不是模板包中的角色：{b}（可选：{a}）", b=bad, a=", ".join(allowed))
        else:
            values["roles"] = list(dict.fromkeys(roles))
    return values


def _readable(conn, key, value):
    """A stored value as the audit log shows it: managers by user name."""
    if key == "manager" and value is not None:
        return conn.execute(sa.select(users.c.username).where(users.c.id == value)).scalar() or value
    return value


def create_user(engine, config, actor, data: dict) -> dict:
    """Create a user from {username, password, roles, full_name, email, manager, team, region, language}."""
    require_admin(actor)
    lang = actor.language
    errors: dict = {}
    _unknown(data, ("username", "password", "roles") + PROFILE, lang, errors)
    name = data.get("username")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64 \
            or any(c.isspace() or ord(c) < 0x20 or c in "/\\" for c in name.strip()):
        errors["username"] = _t(lang, "1 to 64 characters, without spaces or slashes",
                                "应为 1 到 64 个字符，不含空格或斜杠")
        name = None
    else:
        name = name.strip()
    password = data.get("password")
    problems = auth.password_problems(password if isinstance(password, str) else "", name, lang)
    if problems:
        errors["password"] = ("；" if lang == "zh" else "; ").join(problems)
    if "roles" not in data:
        errors["roles"] = _t(lang, "choose at least one role", "请至少选择一个角色")
    with reading(engine) as conn:
        values = _profile(conn, config, data, lang, errors, None)
        if name and conn.execute(sa.select(users.c.id).where(users.c.username == name)).first():
            errors["username"] = _t(lang, "a user named {n!r} already exists", "用户 {n!r} 已存在", n=name)
    if errors:
        raise _invalid(lang, errors)

    def log(conn, uid):
        shown = {k: (None, _readable(conn, k, v)) for k, v in values.items() if v not in (None, [])}
        audit.append(conn, "user.create", **_who(actor), entity="sys_user", record_id=uid, changes=shown,
                     detail=name)
    auth.create_user(engine, name, password, values.get("roles") or [], values.get("full_name"), values.get("email"),
                     values.get("language"), values.get("manager"), values.get("team"), values.get("region"),
                     lang=lang, audit=log)
    return get_user(engine, name, lang)


def _other_active_admins(conn, uid: int) -> int:
    rows = conn.execute(sa.select(users.c.roles).where(users.c.active.is_(True), users.c.id != uid)).scalars()
    return sum(1 for roles in rows if "admin" in (roles or []))


def update_user(engine, config, actor, username: str, data: dict) -> dict:
    """Change profile fields and roles; `password` in `data` resets the password (see reset_password)."""
    require_admin(actor)
    lang = actor.language
    errors: dict = {}
    _unknown(data, ("username", "password", "roles") + PROFILE, lang, errors)
    if "username" in data and data["username"] != username:
        errors["username"] = _t(lang, "the user name cannot change", "用户名不能修改")
    before = get_user(engine, username, lang)
    if "password" in data:
        problems = auth.password_problems(data["password"] if isinstance(data["password"], str) else "", username, lang)
        if problems:
            errors["password"] = ("；" if lang == "zh" else "; ").join(problems)
    with writing(engine) as conn:
        values = _profile(conn, config, data, lang, errors, before)
        if ("admin" in before["roles"] and "roles" in values and "admin" not in values["roles"]
                and before["active"] and not _other_active_admins(conn, before["id"])):
            errors["roles"] = _t(lang, "{n} is the last active administrator: give another user the admin role first",
                                 "{n} 是最后一位启用的管理员：请先把管理员角色给其他用户", n=username)
        if errors:
            raise _invalid(lang, errors)
        profile = {k: (before[k], v) for k, v in values.items() if k != "roles" and before[k] != v}
        if profile:
            conn.execute(users.update().where(users.c.id == before["id"]).values({k: v for k, (_b, v) in profile.items()}))
            audit.append(conn, "user.update", **_who(actor), entity="sys_user", record_id=before["id"], detail=username,
                         changes={k: (_readable(conn, k, b), _readable(conn, k, a)) for k, (b, a) in profile.items()})
        if "roles" in values and values["roles"] != before["roles"]:
            conn.execute(users.update().where(users.c.id == before["id"]).values(roles=values["roles"]))
            audit.append(conn, "user.roles", **_who(actor), entity="sys_user", record_id=before["id"], detail=username,
                         changes={"roles": (before["roles"], values["roles"])})
    if "password" in data:
        reset_password(engine, actor, username, data["password"])
    return get_user(engine, username, lang)


def reset_password(engine, actor, username: str, password) -> None:
    """Set a new password (the policy applies) and sign the user out everywhere — unless it is the
    administrator's own account, whose current session stays."""
    require_admin(actor)
    lang = actor.language
    get_user(engine, username, lang)
    problems = auth.password_problems(password if isinstance(password, str) else "", username, lang)
    if problems:
        raise _invalid(lang, {"password": ("；" if lang == "zh" else "; ").join(problems)})

    def log(conn, uid):
        audit.append(conn, "user.password", **_who(actor), entity="sys_user", record_id=uid, detail=username)
    auth.set_password(engine, username, password, lang=lang, sign_out=username != actor.username, audit=log)


def disable_user(engine, actor, username: str) -> int:
    """Disable the account (no sign-in, every session ended, tokens revoked); the tokens revoked."""
    require_admin(actor)
    lang = actor.language
    before = get_user(engine, username, lang)
    if username == actor.username:
        raise Conflict(_t(lang, "You cannot disable your own account.", "不能停用自己的账号。"))
    if "admin" in before["roles"] and before["active"]:
        with reading(engine) as conn:
            if not _other_active_admins(conn, before["id"]):
                raise Conflict(_t(lang, "{n} is the last active administrator and cannot be disabled.",
                                  "{n} 是最后一位启用的管理员，不能停用。", n=username))

    def log(conn, uid, revoked):
        audit.append(conn, "user.disable", **_who(actor), entity="sys_user", record_id=uid, detail=username,
                     changes={"active": (bool(before["active"]), False)})
    return auth.disable_user(engine, username, audit=log)


def enable_user(engine, actor, username: str) -> None:
    require_admin(actor)
    before = get_user(engine, username, actor.language)

    def log(conn, uid):
        audit.append(conn, "user.enable", **_who(actor), entity="sys_user", record_id=uid, detail=username,
                     changes={"active": (bool(before["active"]), True)})
    auth.enable_user(engine, username, audit=log)


def transfer_plan(rt, actor, from_username: str) -> dict:
    """{entity id: count} of the live records `from_username` owns, and `tasks`: their open tasks."""
    from . import transfer
    require_admin(actor)
    src = get_user(rt.engine, from_username, actor.language)
    p = transfer.plan(rt, src["id"])
    return {"records": {e: len(ids) for e, ids in p.records.items()}, "tasks": p.tasks}


def transfer_records(rt, actor, from_username: str, to_username: str):
    """Hand every record and open task of one user to another (platform_/transfer.py), then log a summary."""
    from . import transfer
    require_admin(actor)
    lang = actor.language
    src = get_user(rt.engine, from_username, lang)
    dst = get_user(rt.engine, to_username, lang)
    if src["id"] == dst["id"]:
        raise _invalid(lang, {"to": _t(lang, "choose another user", "请选择另一位用户")})
    if not dst["active"]:
        raise _invalid(lang, {"to": _t(lang, "{n} is disabled: enable the account or choose another user",
                                       "{n} 已停用：请启用该账号或选择其他用户", n=to_username)})
    result = transfer.run(rt, src["id"], dst["id"])
    with writing(rt.engine) as conn:
        audit.append(conn, "user.transfer", **_who(actor), entity="sys_user", record_id=src["id"],
                     detail=f"{from_username} → {to_username}: "
                            + ", ".join(f"{e} {n}" for e, n in result.moved.items())
                            + f"; tasks {result.tasks}" + (f"; failed {len(result.failed)}" if result.failed else ""))
    return result
