"""Tables the engine itself needs beside the entity tables: users, tokens, series, schema state.

The platform adds its own tables to the same MetaData (`SYSTEM`), so one migrator creates them all.
"""
from __future__ import annotations

import sqlalchemy as sa

SYSTEM = sa.MetaData()

users = sa.Table(
    "sys_user", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("full_name", sa.String(255)),
    sa.Column("email", sa.String(254)),
    sa.Column("roles", sa.JSON, nullable=False, default=list),
    sa.Column("language", sa.String(8)),
    sa.Column("manager", sa.Integer, sa.ForeignKey("sys_user.id")),
    sa.Column("team", sa.String(64), index=True),      # row scope `team`: users of one team see each other's records
    sa.Column("region", sa.String(64), index=True),    # row scope `region`: records owned by users of the region
    sa.Column("active", sa.Boolean(create_constraint=False), nullable=False, default=True),
    sa.Column("created_at", sa.DateTime),
    # Bumped on sign-out and when the user is disabled: sessions and remember-me cookies carry
    # the epoch they were made in and stop working once it moves on (None reads as 0).
    sa.Column("session_epoch", sa.Integer),
)

# The organisation (H1): teams form a tree (a team's scope includes its sub-teams); regions are flat.
# Ids are short codes (`east`, `sales-hz`) that sys_user.team / sys_user.region hold.
teams = sa.Table(
    "sys_team", SYSTEM,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("label_en", sa.String(200)),
    sa.Column("label_zh", sa.String(200)),
    sa.Column("parent", sa.String(64), index=True),
    sa.Column("manager", sa.Integer),
)

regions = sa.Table(
    "sys_region", SYSTEM,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("label_en", sa.String(200)),
    sa.Column("label_zh", sa.String(200)),
)

tokens = sa.Table(
    "sys_token", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("sys_user.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(100)),
    sa.Column("created_at", sa.DateTime),
    sa.Column("last_used_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
)

series = sa.Table(
    "sys_series", SYSTEM,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

# What the migrator last applied, per field: lets it see changes the database cannot show
# (a field that became required, a select that was a string).
schema_fields = sa.Table(
    "sys_schema_field", SYSTEM,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("required", sa.Boolean(create_constraint=False), nullable=False, default=False),
)

migrations = sa.Table(
    "sys_migration", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
    sa.Column("config_digest", sa.String(32)),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("destructive", sa.Boolean(create_constraint=False), nullable=False, default=False),
)
