"""Tables of the automation part: SLA clocks, the outbox, webhooks and assignment cursors.

They join the system MetaData, so the one migrator creates them with everything else.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..systables import SYSTEM

# One row per (record, SLA, target): the clock as last computed from the record's event log.
sla_clocks = sa.Table(
    "sys_sla", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("sla", sa.String(64), nullable=False),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column("policy", sa.String(64)),
    sa.Column("target_seconds", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("due_at", sa.DateTime),                    # null while paused
    sa.Column("warn_at", sa.DateTime),
    sa.Column("paused", sa.Boolean(create_constraint=False), nullable=False, default=False),
    sa.Column("met_at", sa.DateTime),
    sa.Column("warned_at", sa.DateTime),
    sa.Column("breached_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("entity", "record_id", "sla", "target", name="uq_sys_sla_clock"),
    sa.Index("ix_sys_sla_due", "entity", "due_at"),
)

# Side effects written in the transaction that caused them, sent after it committed.
outbox = sa.Table(
    "sys_outbox", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),     # webhook | email
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.Integer),
    sa.Column("webhook_id", sa.Integer, index=True),      # the subscription a webhook row delivers for
    sa.Column("status", sa.String(16), nullable=False, default="pending"),  # pending sending sent dead
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.DateTime, nullable=False),
    sa.Column("claimed_at", sa.DateTime),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_sys_outbox_due", "status", "next_at"),
    sa.Index("ix_sys_outbox_record", "entity", "record_id"),
)

webhooks = sa.Table(
    "sys_webhook", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("secret", sa.String(255), nullable=False),
    sa.Column("active", sa.Boolean(create_constraint=False), nullable=False, default=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("sys_user.id")),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# The last user a round-robin rule gave a record to.
assignment_cursor = sa.Table(
    "sys_assignment_cursor", SYSTEM,
    sa.Column("rule", sa.String(64), primary_key=True),
    sa.Column("last_user", sa.Integer),
)
