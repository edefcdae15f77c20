"""`flask crm segments list | grade [NAME]`: the segments of the config with their member counts,
and running a grading (engine/grading.py) now instead of waiting for its `cron:`."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from engine import grading, segments
from engine.errors import EngineError

segments_group = AppGroup("segments", help="Segments (saved filters) and gradings (RFM) of config/segments.")


def loaded_runtime():
    from .cli import loaded_runtime as loaded
    return loaded()


@segments_group.command("list")
def segments_list():
    """Each segment with its entity and number of members, each grading with its field and schedule."""
    from .auditlog import cli_actor
    rt = loaded_runtime()
    for s in rt.config.segments.values():
        if isinstance(s, grading.Grading):
            click.echo(f"{s.id}\tgrading {s.method} of {s.entity}.{s.field}\t{s.cron or 'not scheduled'}")
        else:
            click.echo(f"{s.id}\tsegment of {s.entity}\t{segments.count(rt.store, s.id, cli_actor())} members")


@segments_group.command("grade")
@click.argument("name", required=False)
def segments_grade(name):
    """Run the grading NAME (default: every grading) now. Prints `NAME: graded N changed N` per grading."""
    from .auditlog import cli_actor
    rt = loaded_runtime()
    rt.ensure_schema()
    found = [g for g in rt.config.segments.values() if isinstance(g, grading.Grading)]
    if name is not None:
        found = [g for g in found if g.id == name]
        if not found:
            have = [g.id for g in rt.config.segments.values() if isinstance(g, grading.Grading)]
            click.echo(f"There is no grading {name!r}; the gradings are: {', '.join(have) or 'none'}.", err=True)
            sys.exit(1)
    for g in found:
        try:
            result = grading.run(rt.store, g, cli_actor())
        except EngineError as e:
            click.echo(f"{g.id}: {e.message}", err=True)
            sys.exit(1)
        click.echo(f"{g.id}: graded {result['graded']} changed {result['changed']}")
