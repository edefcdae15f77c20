"""Tables of the workflow engine: history, stored definition versions, approvals, tasks, timers."""
from __future__ import annotations

import sqlalchemy as sa

from .systables import SYSTEM

history = sa.Table(
    "sys_wf_history", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("wf_version", sa.String(32)),
    sa.Column("transition", sa.String(64)),
    sa.Column("from_state", sa.String(64)),
    sa.Column("to_state", sa.String(64)),
    sa.Column("event", sa.String(32), nullable=False, default="transition"),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("sys_user.id")),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Index("ix_sys_wf_history_record", "entity", "record_id"),
)

definitions = sa.Table(
    "sys_wf_definition", SYSTEM,
    sa.Column("workflow", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

requests = sa.Table(
    "sys_approval_request", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("wf_version", sa.String(32)),
    sa.Column("transition", sa.String(64), nullable=False),
    sa.Column("requester", sa.Integer, sa.ForeignKey("sys_user.id")),
    sa.Column("status", sa.String(16), nullable=False),          # pending approved rejected withdrawn
    sa.Column("step", sa.Integer, nullable=False, default=0),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("closed_at", sa.DateTime),
    sa.Index("ix_sys_approval_request_record", "entity", "record_id", "status"),
)

approval_tasks = sa.Table(
    "sys_approval_task", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("sys_approval_request.id"), nullable=False, index=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("step_name", sa.String(64)),
    sa.Column("approver", sa.Integer, sa.ForeignKey("sys_user.id"), nullable=False),
    sa.Column("delegated_from", sa.Integer, sa.ForeignKey("sys_user.id")),
    sa.Column("status", sa.String(16), nullable=False),          # pending approved rejected delegated skipped cancelled
    sa.Column("comment", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("acted_at", sa.DateTime),
    sa.Index("ix_sys_approval_task_approver", "approver", "status"),
)

delegations = sa.Table(
    "sys_delegation", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("sys_user.id"), nullable=False, index=True),
    sa.Column("delegate", sa.Integer, sa.ForeignKey("sys_user.id"), nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),
)

tasks = sa.Table(
    "sys_wf_task", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("assignee", sa.Integer, sa.ForeignKey("sys_user.id"), index=True),
    sa.Column("due_on", sa.Date),
    sa.Column("status", sa.String(16), nullable=False, default="open"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("done_at", sa.DateTime),
)

notifications = sa.Table(
    "sys_notification", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("sys_user.id"), nullable=False, index=True),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.Integer),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("read_at", sa.DateTime),
)

timers = sa.Table(
    "sys_timer", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("due_at", sa.DateTime, nullable=False),
    sa.Column("calendar", sa.String(16), nullable=False, default="calendar"),
    sa.Column("status", sa.String(16), nullable=False, default="running"),   # running stopped fired failed
    sa.Column("created_at", sa.DateTime, nullable=False),
    # what firing does: workflow (the start_timer's actions), sla_warn, sla_breach, schedule, escalate
    sa.Column("kind", sa.String(16)),
    sa.Column("payload", sa.JSON),
    sa.Column("fired_at", sa.DateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_sys_timer_due", "status", "due_at"),
    sa.Index("ix_sys_timer_record", "entity", "record_id", "name"),
)
