"""The live engine of one app: the last good config, its tables and its record store.

Reloading a broken config keeps serving the last good one and keeps the problems to show.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import sqlalchemy as sa

from engine.attachments import AttachmentStore
from engine.audit import AuditTrail
from engine.automation.service import Automation
from engine.db import make_engine
from engine.errors import ConfigInvalid
from engine.loader import load_config
from engine.migrator import Migrator
from engine.access import AccessPolicy
from engine.actor import SYSTEM_ACTOR
from engine.statemachine import Workflows
from engine.store import RecordStore

from . import configstore, packs  # noqa: F401  (their tables join the system metadata before any Migrator)

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, database_url: str, config_dir: str, attachments_dir: str, migrate_on_start: bool = True,
                 instance_dir: str | None = None):
        self.engine = make_engine(database_url)
        from pathlib import Path

        from engine import crypto
        crypto.set_keys(crypto.load_keys(os.environ.get("CRM_ENCRYPTION_KEY"),
                                         Path(instance_dir) / "encryption_key" if instance_dir else None))
        self.migrate_on_start = migrate_on_start
        self.config_dir = config_dir
        self.attachments = AttachmentStore(attachments_dir)
        self.config = None
        self.store: RecordStore | None = None
        self.workflows: Workflows | None = None
        self.automation: Automation | None = None
        self.audit: AuditTrail | None = None
        self.problems: list = []
        self._schema_ready = False
        self._lock = threading.Lock()
        self.seen_generation = None     # the DB's config generation this process last loaded
        self._checked = 0.0
        self._follow_lock = threading.Lock()

    def load(self) -> bool:
        """(Re)load the config folder. On error keep the last good config; return success."""
        generation = configstore.generation(self.engine)
        try:
            config = load_config(self.config_dir)
        except ConfigInvalid as e:
            self.problems = e.problems
            log.error("config not loaded, %s", e.message if self.config is None
                      else "still serving the last good config:\n" + e.message)
            return False
        migrator = Migrator(self.engine, config)
        with self._lock:
            if self.automation is not None:
                self.automation.close()
            if self.audit is not None:
                self.audit.close()
            self.config = config
            self.problems = []
            tables = {eid: migrator.metadata.tables[e.table_name] for eid, e in config.entities.items()}
            self.store = RecordStore(self.engine, config, migrator.metadata, self.attachments,
                                     AccessPolicy(config, tables))
            self.workflows = Workflows(self.store)
            self.automation = Automation(self.store, self.workflows)
            self.audit = AuditTrail(self.store)
            self._schema_ready = False
            self.seen_generation = generation
        return True

    def follow(self, every: float = 1.0) -> bool:
        """Reload when another process applied a config change (the DB generation moved); checks the
        DB at most once per `every` seconds. Called before each request and in the job loops."""
        now = time.monotonic()
        if now - self._checked < every or not self._follow_lock.acquire(blocking=False):
            return False
        try:
            self._checked = now
            generation = configstore.generation(self.engine)
            if generation == self.seen_generation:
                return False
            if self.load():
                self.ensure_schema()
            else:
                self.seen_generation = generation   # a broken folder: keep serving, do not retry every second
            log.info("config generation %s: reloaded", generation)
            return True
        finally:
            self._follow_lock.release()

    def migrator(self) -> Migrator:
        return Migrator(self.engine, self.config)

    def ensure_schema(self, by=None) -> list:
        """Apply the additive part of the plan once per loaded config (start-up, reload); the steps
        applied, each batch audited as `config.apply` by `by` (an Actor; default: the system)."""
        applied: list = []
        if self._schema_ready or self.config is None:
            return applied
        with self._lock:
            if not self._schema_ready:
                if self.migrate_on_start:
                    applied = self.migrator().apply(only_safe=True, audit_as=by or SYSTEM_ACTOR)
                    if applied:
                        log.info("applied %d additive migration step(s)", len(applied))
                    self.workflows.register_definitions()
                else:
                    log.info("CRM_MIGRATE_ON_START=0: the schema is left to `flask crm migrate`")
                self._schema_ready = True
                try:  # the folder as served becomes a config version (the first, or edits made by hand)
                    configstore.sync_history(self.engine, self.config_dir)
                except sa.exc.SQLAlchemyError as e:  # tables not created yet, or another process won the race
                    log.info("config history not synced: %s", str(e).splitlines()[0])
        return applied
