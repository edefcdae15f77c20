"""`flask crm …` commands (DESIGN.md "Public contracts")."""
from __future__ import annotations

import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup

from engine.errors import ConfigInvalid, EngineError, MigrationRefused
from engine.loader import load_config

from . import auditlog, auth

DEMO_PASSWORD = "demo-Passw0rd"

crm = AppGroup("crm", help="Manage the CRM: config, schema, demo data, users and tokens.")


def runtime():
    return current_app.extensions["crm"]


def loaded_runtime():
    rt = runtime()
    if rt.config is None:
        click.echo(f"The configuration in {rt.config_dir} does not load:", err=True)
        for p in rt.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(1)
    return rt


@crm.command("check")
@click.argument("directory", required=False)
def check(directory):
    """Validate a config folder (default: the configured one); print every error; exit 1 on error."""
    directory = directory or runtime().config_dir
    try:
        cfg = load_config(directory)
    except ConfigInvalid as e:
        for p in e.problems:
            click.echo(str(p))
        click.echo(f"{len(e.problems)} problem(s) found in {directory}", err=True)
        sys.exit(1)
    click.echo(f"{directory}: OK ({len(cfg.entities)} entities, {len(cfg.forms)} forms, "
               f"{len(cfg.workflows)} workflows)")


def _print_plan(steps):
    if not steps:
        click.echo("The database matches the config: nothing to do.")
        return
    for s in steps:
        click.echo(s.describe())
    risky = sum(1 for s in steps if s.destructive)
    click.echo(f"{len(steps)} step(s), {risky} risky (marked !; applied only with --allow-destructive).")


def _in_flight(rt) -> bool:
    """Print records whose state a new workflow version removed; True if any would be stranded."""
    stranded = False
    for row in rt.workflows.in_flight():
        if row["kept_on"]:
            click.echo(f"~ {row['entity']}: {row['records']} record(s) in state {row['state']!r}, removed from "
                       f"{row['workflow']}; they keep running on stored version {row['kept_on']} until they reach "
                       "a state of the new version")
        else:
            stranded = True
            click.echo(f"! {row['entity']}: {row['records']} record(s) in state {row['state']!r}, which no version "
                       f"of {row['workflow']} has: move them first (the migration refuses to strand them)")
    return stranded


@crm.command("init")
def init():
    """Create or migrate the tables for the loaded config (additive steps only)."""
    rt = loaded_runtime()
    applied = rt.migrator().apply(only_safe=True, audit_as=auditlog.cli_actor())
    rt.workflows.register_definitions()
    click.echo(f"Database ready: {len(applied)} step(s) applied.")
    left = [s for s in rt.migrator().plan() if s.destructive]
    if left:
        click.echo("Risky steps wait for `flask crm migrate --apply --allow-destructive`:")
        _print_plan(left)


@crm.command("migrate")
@click.option("--plan", "show_plan", is_flag=True, help="Show the steps without applying them.")
@click.option("--apply", "do_apply", is_flag=True, help="Apply the steps.")
@click.option("--allow-destructive", is_flag=True, help="Also apply risky steps (renames, removals, type changes).")
@click.option("--purge", is_flag=True, help="Drop columns and tables kept by earlier removals (needs --allow-destructive).")
def migrate(show_plan, do_apply, allow_destructive, purge):
    """Compare the config with the database; show or apply the plan."""
    rt = loaded_runtime()
    m = rt.migrator()
    if purge:
        if not allow_destructive:
            click.echo("--purge drops data kept by earlier removals; repeat with --allow-destructive.", err=True)
            sys.exit(1)
        dropped = m.purge_removed()
        for name in dropped:
            click.echo(f"dropped {name}")
        if dropped:
            auditlog.record(rt.engine, "config.purge", auditlog.cli_actor(),
                            detail=f"config {rt.config.digest}: dropped " + ", ".join(dropped))
        return
    if not do_apply:
        _print_plan(m.plan())
        _in_flight(rt)
        return
    if _in_flight(rt):
        click.echo("Refused: records would be stranded in states no workflow version has.", err=True)
        sys.exit(1)
    try:
        applied = m.apply(allow_destructive=allow_destructive, audit_as=auditlog.cli_actor())
    except MigrationRefused as e:
        click.echo(e.message, err=True)
        sys.exit(1)
    rt.workflows.register_definitions()
    from . import configstore
    configstore.sync_history(rt.engine, rt.config_dir)
    configstore.bump_generation(rt.engine)      # running web and worker processes reload within seconds
    _print_plan(applied)
    click.echo("Applied." if applied else "")


@crm.command("demo")
@click.option("--records", default=200, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("--seed", default=0, type=int)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has records.")
@click.option("--users/--no-users", default=True, show_default=True,
              help="Also create one demo user per role of the pack (demo_<role>, password demo-Passw0rd).")
def demo(records, seed, if_empty, users):
    """Fill the database with realistic, consistent demo data."""
    from engine import demo as demo_data
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    rt.workflows.register_definitions()
    if if_empty and not demo_data.is_empty(rt.engine, rt.config, rt.store.metadata):
        click.echo("The database already has records; no demo data added.")
        return
    if users and rt.config.pack is not None:
        made = []
        for role, _label in rt.config.pack.roles:
            name = f"demo_{role}"
            if role != "admin" and not auth.find_user(rt.engine, name):
                auth.create_user(rt.engine, name, DEMO_PASSWORD, [role], full_name=f"Demo {role.replace('_', ' ')}")
                made.append(name)
        if made:
            click.echo(f"Demo users (password {DEMO_PASSWORD}): {', '.join(made)}")
    started = time.monotonic()
    last = [0.0]

    def progress(entity, done, total):
        if time.monotonic() - last[0] > 2 or done == total:
            last[0] = time.monotonic()
            click.echo(f"  {entity}: {done}/{total}")

    counts = demo_data.generate(rt.engine, rt.config, rt.store.metadata, records, seed=seed, progress=progress)
    click.echo(f"Demo data: {sum(counts.values())} records in {time.monotonic() - started:.1f} s "
               f"({', '.join(f'{k} {v}' for k, v in counts.items())})")


@crm.group("user")
def user():
    """Users."""


@user.command("create")
@click.argument("name")
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, default=("staff",), show_default=True,
              help="Role (repeat or comma-separate for several): admin, staff, sales, sales_manager, …")
@click.option("--full-name")
@click.option("--email")
@click.option("--language", type=click.Choice(["en", "zh"]))
@click.option("--manager", help="User name of the manager.")
@click.option("--team", help="Team name: row scope `team` shares records within a team (access.yaml).")
@click.option("--if-missing", is_flag=True, help="Do nothing if the user exists.")
def user_create(name, password, roles, full_name, email, language, manager, team, if_missing):
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    if if_missing and auth.find_user(rt.engine, name):
        click.echo(f"User {name} exists.")
        return
    roles = [r.strip() for part in roles for r in part.split(",") if r.strip()]
    manager_id = None
    if manager:
        row = auth.find_user(rt.engine, manager)
        if row is None:
            raise click.ClickException(f"no user named {manager!r}")
        manager_id = row["id"]
    try:
        uid = auth.create_user(rt.engine, name, password, roles, full_name, email, language, manager_id, team,
                               audit=auditlog.user_entry("user.create", auditlog.cli_actor(), name, changes={
                                   k: (None, v) for k, v in (("roles", roles), ("full_name", full_name),
                                                             ("email", email), ("language", language),
                                                             ("manager", manager), ("team", team)) if v}))
    except EngineError as e:
        raise click.ClickException(e.message)
    click.echo(f"User {name} created (id {uid}, roles {', '.join(roles)}).")


@user.command("team")
@click.argument("name")
@click.argument("team")
def user_team(name, team):
    """Put user NAME in TEAM ("-" for none): row scope `team` shares records within a team."""
    import sqlalchemy as sa

    from engine.systables import users
    rt = loaded_runtime()
    with rt.engine.begin() as conn:
        row = conn.execute(sa.select(users.c.id, users.c.team).where(users.c.username == name)).first()
        n = conn.execute(users.update().where(users.c.username == name)
                         .values(team=None if team == "-" else team)).rowcount
        if n and row.team != (None if team == "-" else team):
            auditlog.user_entry("user.update", auditlog.cli_actor(), name,
                                changes={"team": (row.team, None if team == "-" else team)})(conn, row.id)
    if not n:
        raise click.ClickException(f"no user named {name!r}")
    click.echo(f"{name} is in team {team}." if team != "-" else f"{name} is in no team.")


@user.command("list")
def user_list():
    for u in auth.list_users(loaded_runtime().engine):
        click.echo(f"{u['id']:>5} {u['username']:<20} {','.join(u['roles'] or ()):<30} "
                   f"{'active' if u['active'] else 'inactive'}")


@user.command("region")
@click.argument("name")
@click.argument("region")
def user_region(name, region):
    """Put user NAME in REGION ("-" for none; see `region list`). Audited as user.update."""
    from . import org
    rt = loaded_runtime()
    rt.ensure_schema()
    try:
        org.update_user(rt.engine, rt.config, auditlog.cli_actor(), name, {"region": None if region == "-" else region})
    except EngineError as e:
        raise click.ClickException(e.message)
    click.echo(f"{name} is in region {region}." if region != "-" else f"{name} is in no region.")


# ---- the organisation: teams (a tree) and regions, changed through platform_/org.py (audited) ----
def _org_add(kind, ident, data):
    from . import org
    rt = loaded_runtime()
    rt.ensure_schema()
    try:
        org.create(rt.engine, auditlog.cli_actor(), kind, {"id": ident, **{k: v for k, v in data.items() if v is not None}})
    except EngineError as e:
        raise click.ClickException(e.message)
    click.echo(f"{kind.capitalize()} {ident} created.")


@crm.group("team")
def team_group():
    """Teams: a tree (a team's row scope includes its sub-teams)."""


@team_group.command("add")
@click.argument("ident", metavar="ID")
@click.option("--label-en")
@click.option("--label-zh")
@click.option("--parent", help="Id of the parent team.")
@click.option("--manager", help="User name of the team's manager.")
def team_add(ident, label_en, label_zh, parent, manager):
    """Create team ID (a short code such as east or sales-hz)."""
    _org_add("team", ident, {"label_en": label_en or (None if label_zh else ident), "label_zh": label_zh,
                             "parent": parent, "manager": manager})


@team_group.command("list")
def team_list():
    """Every team as a tree: id, labels, members, manager."""
    from . import org
    rows = org.team_tree(loaded_runtime().engine)
    for r in rows:
        click.echo(f"{'  ' * r['depth']}{r['id']:<20} {r['label_en'] or '':<24} {r['label_zh'] or '':<12} "
                   f"{r['members']} member(s)" + (f", manager {r['manager_username']}" if r["manager_username"] else ""))
    click.echo(f"{len(rows)} team(s)")


@crm.group("region")
def region_group():
    """Regions: row scope `region` shares the records of the users of one region."""


@region_group.command("add")
@click.argument("ident", metavar="ID")
@click.option("--label-en")
@click.option("--label-zh")
def region_add(ident, label_en, label_zh):
    """Create region ID (a short code such as east-china)."""
    _org_add("region", ident, {"label_en": label_en or (None if label_zh else ident), "label_zh": label_zh})


@region_group.command("list")
def region_list():
    """Every region: id, labels, members."""
    from . import org
    rows = org.listing(loaded_runtime().engine, "region")
    for r in rows:
        click.echo(f"{r['id']:<20} {r['label_en'] or '':<24} {r['label_zh'] or '':<12} {r['members']} member(s)")
    click.echo(f"{len(rows)} region(s)")


@crm.group("token")
def token():
    """API tokens."""


@token.command("create")
@click.option("--user", "username", required=True)
@click.option("--name", default=None)
def token_create(username, name):
    """Create an API token; it is printed once, as the last line."""
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    try:
        value = auth.create_token(rt.engine, username, name,
                                  audit=auditlog.user_entry("token.create", auditlog.cli_actor(), username))
    except EngineError as e:
        raise click.ClickException(e.message)
    click.echo(f"Token for {username} (send as 'Authorization: Bearer <token>'; it is not shown again):")
    click.echo(value)


# ---- user lifecycle and tokens (security): disable, enable, transfer; token list, revoke --------
def _user_row(rt, name):
    row = auth.find_user(rt.engine, name)
    if row is None:
        raise click.ClickException(f"no user named {name!r}")
    return row


@user.command("disable")
@click.argument("name")
def user_disable(name):
    """Disable NAME at once: sign-in refused, every session signed out, every API token revoked."""
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    row = _user_row(rt, name)
    revoked = auth.disable_user(rt.engine, name, audit=auditlog.user_entry(
        "user.disable", auditlog.cli_actor(), name, changes={"active": (bool(row["active"]), False)}))
    click.echo(f"User {name} disabled: signed out everywhere, {revoked} token(s) revoked.")


@user.command("enable")
@click.argument("name")
def user_enable(name):
    """Let a disabled user sign in again (revoked tokens stay revoked)."""
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    row = _user_row(rt, name)
    auth.enable_user(rt.engine, name, audit=auditlog.user_entry(
        "user.enable", auditlog.cli_actor(), name, changes={"active": (bool(row["active"]), True)}))
    click.echo(f"User {name} enabled.")


@user.command("transfer")
@click.argument("from_name", metavar="FROM")
@click.argument("to_name", metavar="TO")
@click.option("--dry-run", is_flag=True, help="Print what would move, change nothing.")
def user_transfer(from_name, to_name, dry_run):
    """Give every record FROM owns and every open task assigned to FROM to TO (one change per
    record through the store, so each is audited). Prints the count per entity."""
    from . import transfer
    rt = loaded_runtime()
    rt.ensure_schema()
    src, dst = _user_row(rt, from_name), _user_row(rt, to_name)
    if src["id"] == dst["id"]:
        raise click.ClickException("FROM and TO are the same user")
    if not dst["active"]:
        raise click.ClickException(f"{to_name} is disabled: enable the account or choose another user")
    if dry_run:
        p = transfer.plan(rt, src["id"])
        for entity, ids in p.records.items():
            click.echo(f"{entity}: {len(ids)} record(s) would move ({_ids(ids)})")
        click.echo(f"tasks: {p.tasks} open task(s) would move")
        click.echo(f"Dry run: {sum(len(i) for i in p.records.values())} record(s) and {p.tasks} task(s) "
                   f"would move from {from_name} to {to_name}; nothing changed.")
        return
    result = transfer.run(rt, src["id"], dst["id"])
    auditlog.record(rt.engine, "user.transfer", auditlog.cli_actor(), entity=auditlog.USER_ENTITY,
                    record_id=src["id"], detail=f"{from_name} → {to_name}: "
                    + ", ".join(f"{e} {n}" for e, n in result.moved.items()) + f"; tasks {result.tasks}"
                    + (f"; failed {len(result.failed)}" if result.failed else ""))
    for entity, n in result.moved.items():
        click.echo(f"{entity}: {n} record(s) moved")
    click.echo(f"tasks: {result.tasks} open task(s) moved")
    for entity, rid, message in result.failed:
        click.echo(f"failed: {entity} #{rid}: {message}", err=True)
    click.echo(f"Moved {sum(result.moved.values())} record(s) and {result.tasks} task(s) from {from_name} "
               f"to {to_name}" + (f"; {len(result.failed)} record(s) could not move." if result.failed else "."))
    if result.failed:
        sys.exit(1)


def _ids(ids, shown=10):
    return ", ".join(f"#{i}" for i in ids[:shown]) + (f", … {len(ids) - shown} more" if len(ids) > shown else "")


@token.command("list")
@click.option("--user", "username", required=True)
def token_list(username):
    """The user's tokens: id, name, created, last used, and whether revoked."""
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    _user_row(rt, username)
    rows = auth.list_tokens(rt.engine, username)

    def at(v):
        return v.strftime("%Y-%m-%d %H:%M") + "Z" if v else "never"
    for r in rows:
        state = f"revoked {at(r['revoked_at'])}" if r["revoked_at"] else "active"
        click.echo(f"{r['id']:>5} {(r['name'] or '-'):<20} created {at(r['created_at'])}  "
                   f"last used {at(r['last_used_at'])}  {state}")
    click.echo(f"{len(rows)} token(s), {sum(1 for r in rows if not r['revoked_at'])} active")


@token.command("revoke")
@click.option("--user", "username", required=True)
@click.option("--id", "token_id", type=int, default=None, help="Only this token (see `token list`).")
def token_revoke(username, token_id):
    """Revoke all of the user's tokens (or the one --id names); they stop working at once."""
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    _user_row(rt, username)
    n = auth.revoke_tokens(rt.engine, username, token_id,
                           audit=auditlog.user_entry("token.revoke", auditlog.cli_actor(), username))
    if token_id is not None and n == 0:
        raise click.ClickException(f"{username} has no active token #{token_id}")
    click.echo(f"Revoked {n} token(s) of {username}.")


@crm.command("worker")
@click.option("--burst", is_flag=True, help="Run what is queued (after one sweep) and stop.")
def worker(burst):
    """Run an rq worker for background jobs (needs REDIS_URL). Any number may run; together they
    keep one sweep per CRM_SWEEP_SECONDS going (timers, scheduled rules, outbox retries)."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        raise click.ClickException("REDIS_URL is not set: jobs run in-process in the web server, no worker is needed.")
    from . import jobs
    rt = loaded_runtime()
    rt.ensure_schema()
    jobs.bind_worker_app(current_app._get_current_object())
    q = current_app.extensions["crm_jobs"]
    if burst:
        q.sweep_now()
    else:
        import threading

        def tick():
            while True:
                try:
                    rt.follow()          # a config change applied elsewhere: reload within seconds
                    q.sweep_if_due()
                except Exception as e:  # noqa: BLE001 - Redis hiccup: try again next tick
                    click.echo(f"sweep not enqueued: {e}", err=True)
                time.sleep(max(1.0, q.interval / 2))
        threading.Thread(target=tick, name="crm-sweep-ticker", daemon=True).start()
    jobs.rq_worker([jobs.QUEUE], q.queue().connection).work(burst=burst, logging_level="WARNING")


@crm.group("timers")
def timers_group():
    """Durable timers: SLA warnings and breaches, reminders, scheduled rules."""


@timers_group.command("run")
@click.option("--now", "at", help="Fire what is due at this instant (ISO 8601; default: now).")
def timers_run(at):
    """Fire every timer due at NOW, each effect once however often it runs; send the outbox.
    Prints `fired N` last."""
    from engine import clock

    from . import jobs
    rt = loaded_runtime()
    rt.ensure_schema()
    instant = _instant(at, "--now") if at is not None else None
    with clock.frozen(instant) if instant else _nothing():
        result = rt.automation.sweep(instant)
    for tid, name, due in result.late:
        click.echo(f"late: timer #{tid} {name} was due at {due.isoformat()}Z and fired once now")
    if result.late_count > len(result.late):
        click.echo(f"late: {result.late_count - len(result.late)} more timers fired late")
    for tid, name, err in result.failed:
        click.echo(f"failed: timer #{tid} {name}: {err}", err=True)
    if not current_app.config.get("REDIS_URL"):
        from . import delivery
        sent = delivery.dispatch(rt, jobs.settings_of(current_app))
        if any(sent.values()):
            click.echo(f"outbox: sent {sent['sent']}, retrying {sent['retry']}, failed {sent['dead']}")
    else:
        current_app.extensions["crm_jobs"].kick()
    click.echo(f"fired {result.fired}")


@crm.group("calendar")
def calendar_group():
    """Business calendars: working-time arithmetic."""


@calendar_group.command("due")
@click.argument("calendar")
@click.option("--from", "start", required=True, help="Start instant, ISO 8601; without offset: the calendar's local time.")
@click.option("--hours", type=float, help="Working hours to add.")
@click.option("--days", type=int, help="Working days to add.")
def calendar_due(calendar, start, hours, days):
    """Print when HOURS (or DAYS) of working time after --from end, ISO 8601 with the calendar's offset."""
    import datetime as dt
    if (hours is None) == (days is None):
        raise click.ClickException("give exactly one of --hours and --days")
    if (hours is not None and not 0 <= hours <= 100000) or (days is not None and not 0 <= days <= 10000):
        raise click.ClickException("--hours and --days must be positive and reasonable")
    try:
        value = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        raise click.ClickException(f"--from {start!r} is not an ISO 8601 date-time (e.g. 2026-11-20T17:30)") from None
    rt = loaded_runtime()
    rt.ensure_schema()
    try:
        due = rt.automation.due(calendar, value, hours=hours, days=days)
    except EngineError as e:
        raise click.ClickException(e.message) from None
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(due.isoformat())


@crm.group("jobs")
def jobs_group():
    """Background work that failed, and re-running it."""


@jobs_group.command("failed")
def jobs_failed():
    """List e-mails, webhook calls and timers that failed, with their error."""
    from engine.automation import outbox, timers
    rt = loaded_runtime()
    rows = [("email" if r["kind"] == "email" else "webhook", r["id"], r["status"], r["attempts"], r["last_error"])
            for r in outbox.problems(rt.engine)]
    rows += [("timer", r["id"], r["status"], r["attempts"], f"{r['name']}: {r['last_error']}")
             for r in timers.problems(rt.engine)]
    url = current_app.config.get("REDIS_URL")
    if url:
        from rq.registry import FailedJobRegistry
        q = current_app.extensions["crm_jobs"].queue()
        for job_id in FailedJobRegistry(queue=q).get_job_ids():
            job = q.fetch_job(job_id)
            err = (job.latest_result().exc_string if job and job.latest_result() else "") or ""
            rows.append(("rq", job_id, "failed", 1, err.strip().splitlines()[-1] if err.strip() else ""))
    for kind, rid, status, attempts, err in rows:
        click.echo(f"{kind} #{rid} {status} after {attempts} attempt(s): {err}")
    click.echo(f"{len(rows)} failed")


@jobs_group.command("retry")
@click.argument("kind", type=click.Choice(["email", "webhook", "timer"]))
@click.argument("job_id", type=int)
def jobs_retry(kind, job_id):
    """Re-run a failed e-mail, webhook call or timer now."""
    from engine.automation import outbox, timers
    rt = loaded_runtime()
    ok = timers.retry(rt.engine, job_id) if kind == "timer" else outbox.retry(rt.engine, job_id)
    if not ok:
        raise click.ClickException(f"{kind} #{job_id} is not waiting to be re-run")
    click.echo(f"{kind} #{job_id} will run again at the next sweep")


def _instant(text, what):
    import datetime as dt
    if not text.strip():
        raise click.ClickException(f"{what} is empty: give an ISO 8601 date-time (e.g. 2026-11-23T09:30+08:00)")
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.ClickException(f"{what} {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        value = value.astimezone()        # a naive instant is the server's local time
    return value


def _nothing():
    import contextlib
    return contextlib.nullcontext()


@crm.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
def backup_cmd(file):
    """Write every table and attachment to FILE (a zip)."""
    from engine.backup import backup
    rt = loaded_runtime()
    m = backup(rt.engine, rt.store.metadata, file, rt.attachments.root, rt.config.digest)
    click.echo(f"Backup written to {file}: {sum(m['tables'].values())} rows in {len(m['tables'])} tables, "
               f"{m['files']} files.")


@crm.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore_cmd(file, yes):
    """Replace all data with the backup in FILE (one transaction: all or nothing)."""
    from engine.backup import restore
    rt = loaded_runtime()
    rt.migrator().apply(only_safe=True)
    if not yes and not click.confirm("This replaces every record in the database. Continue?"):
        sys.exit(1)
    try:
        m = restore(rt.engine, rt.store.metadata, file, rt.attachments.root)
    except (ValueError, KeyError) as e:
        raise click.ClickException(f"restore refused: {e}")
    click.echo(f"Restored {sum(m['tables'].values())} rows from {file} (made {m['created_at']}).")


@crm.group("workflow")
def workflow():
    """Workflow administration."""


@workflow.command("move")
@click.argument("entity")
@click.argument("from_state")
@click.argument("to_state")
@click.option("--comment", default="moved by an administrator after a workflow change")
def workflow_move(entity, from_state, to_state, comment):
    """Move every ENTITY record in FROM_STATE to TO_STATE of the current workflow version."""
    from engine.actor import SYSTEM_ACTOR
    rt = loaded_runtime()
    try:
        n = rt.workflows.move_state(entity, from_state, to_state, SYSTEM_ACTOR, comment)
    except EngineError as e:
        detail = "; ".join(f"{k}: {v}" for k, v in (getattr(e, "fields", None) or {}).items())
        raise click.ClickException(e.message + (f" ({detail})" if detail else ""))
    click.echo(f"Moved {n} {entity} record(s) from {from_state!r} to {to_state!r}.")


@crm.group("audit")
def audit_group():
    """The audit trail: who changed what, when, from what to what."""


@audit_group.command("verify")
def audit_verify():
    """Check the hash chain of the whole log; exit 1 naming the first entry altered or removed."""
    from engine import audit
    rt = loaded_runtime()
    rt.ensure_schema()
    ok, message, _n = audit.verify(rt.engine)
    if not ok:
        click.echo(f"AUDIT LOG DAMAGED: {message}", err=True)
        sys.exit(1)
    click.echo(message)


@crm.group("keys")
def keys_group():
    """Encryption keys of `encrypted: true` fields."""


@keys_group.command("rotate")
def keys_rotate():
    """Re-encrypt every encrypted value with the newest key (the first of CRM_ENCRYPTION_KEY); values
    written before a field was encrypted are encrypted now. Old keys may be dropped afterwards."""
    import sqlalchemy as sa

    from engine import crypto
    from engine.db import writing
    rt = loaded_runtime()
    rt.ensure_schema()
    total = 0
    for e in rt.config.entities.values():
        fields = [f for f in e.fields.values() if f.encrypted and f.stored]
        if not fields:
            continue
        t = rt.store.table(e)
        with writing(rt.engine) as conn:
            for f in fields:
                raw = sa.cast(t.c[f.id], sa.Text)            # the stored text, not decrypted
                rows = conn.execute(sa.select(t.c.id, raw.label("raw"), t.c[f.id].label("plain"))
                                    .where(t.c[f.id].is_not(None))).all()
                todo = [(r.id, r.plain) for r in rows if crypto.needs_rotation(r.raw)]
                for rid, plain in todo:
                    conn.execute(t.update().where(t.c.id == rid).values({f.id: plain}))
                total += len(todo)
                click.echo(f"{e.id}.{f.id}: {len(todo)} of {len(rows)} value(s) re-encrypted")
    click.echo(f"re-encrypted {total}")


from .imports import register as _register_import  # noqa: E402  (`flask crm import`, platform_/imports.py)

_register_import(crm, loaded_runtime)


from .pack_cli import pack_group  # noqa: E402  (flask crm pack ...)

crm.add_command(pack_group)


from .cli_segments import segments_group  # noqa: E402  (flask crm segments ..., platform_/cli_segments.py)

crm.add_command(segments_group)
