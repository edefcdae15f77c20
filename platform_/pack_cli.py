"""`flask crm pack list | install | upgrade | uninstall | export` (the work is in platform_/packs.py).

Each command prints the plan (or every reason it is refused) and exits 1 when refused, having
changed nothing.
"""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from . import packs
from .configstore import Refused

pack_group = AppGroup("pack", help="Install, upgrade, uninstall and export packs beside the config folder's own.")


def _rt():
    rt = current_app.extensions["crm"]
    if rt.config is None:
        click.echo(f"The configuration in {rt.config_dir} does not load:", err=True)
        for p in rt.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(1)
    rt.ensure_schema()
    return rt


def _refused(e: Refused):
    click.echo(e.message, err=True)
    for p in e.problems:
        click.echo(f"  {p}", err=True)
    sys.exit(1)


def _show(result):
    for s in result.get("steps", ()):
        flag = "!" if s["destructive"] else "+"
        rows = f" ({s['rows']} row(s))" if s.get("rows") else ""
        click.echo(f"{flag} {s['kind']} {s['table']}{'.' + s['column'] if s.get('column') else ''}: {s['detail']}{rows}")


def _label(label):
    if isinstance(label, dict):
        return " / ".join(v for v in (label.get("en"), label.get("zh")) if v)
    return label or ""


@pack_group.command("list")
def pack_list():
    """The packs of this instance: the folder's own pack first."""
    rt = _rt()
    for pid, row in packs.installed(rt).items():
        kind = "own" if row["own"] else "installed"
        click.echo(f"{pid}\t{row['version']}\t{kind}\t{len(row['files'])} file(s)\t{_label(row['label'])}")


@pack_group.command("install")
@click.argument("source")
@click.option("--plan", "plan_only", is_flag=True, help="Show the plan; change nothing.")
@click.option("--allow-destructive", is_flag=True, help="Also apply risky steps.")
def pack_install(source, plan_only, allow_destructive):
    """Install the pack in folder or zip SOURCE beside the installed ones."""
    rt = _rt()
    try:
        src = packs.read_source(source)
        if plan_only:
            result = packs.plan_install(rt, src)
            _show(result)
            if result["problems"]:
                raise Refused(f"Pack {src.id} {src.version} cannot be installed:", result["problems"])
            return
        _show(packs.plan_install(rt, src))
        number = packs.install(rt, src, allow_destructive)
    except Refused as e:
        _refused(e)
    click.echo(f"Installed {src.id} {src.version} (configuration version {number}).")


@pack_group.command("upgrade")
@click.argument("source")
@click.option("--plan", "plan_only", is_flag=True, help="Show the merge and the plan; change nothing.")
@click.option("--allow-destructive", is_flag=True, help="Also apply risky steps (fields or entities the new version dropped).")
def pack_upgrade(source, plan_only, allow_destructive):
    """Upgrade an installed pack to the version in SOURCE, keeping local changes (a three-way merge)."""
    rt = _rt()
    try:
        src = packs.read_source(source)
        result, change = packs.plan_upgrade(rt, src)
        for path in sorted(change):
            click.echo(f"{'-' if change[path] is None else '~'} {path}")
        _show(result)
        if result["problems"]:
            raise Refused(f"Pack {src.id} is not upgraded to {src.version}; nothing changed:", result["problems"])
        if plan_only:
            return
        number = packs.upgrade(rt, src, allow_destructive)
    except Refused as e:
        _refused(e)
    click.echo(f"Upgraded {src.id} to {src.version} (configuration version {number}).")


@pack_group.command("uninstall")
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also drop the data of the pack's entities.")
def pack_uninstall(name, purge):
    """Remove what pack NAME brought; its data is kept (and back on reinstall) unless --purge."""
    rt = _rt()
    try:
        result, _change = packs.plan_uninstall(rt, name)
        _show(result)
        number, dropped = packs.uninstall(rt, name, purge)
    except Refused as e:
        _refused(e)
    for t in dropped:
        click.echo(f"dropped {t}")
    click.echo(f"Uninstalled {name} (configuration version {number})"
               + ("; its data was dropped." if purge else "; its data is kept."))


@pack_group.command("export")
@click.argument("name")
@click.argument("file")
def pack_export(name, file):
    """Write pack NAME as it is now (local changes included) to the zip FILE."""
    rt = _rt()
    try:
        names = packs.export(rt, name, file)
    except Refused as e:
        _refused(e)
    click.echo(f"Exported {name}: {len(names)} file(s) to {file}.")
