"""One error root with structured fields; callers map them to HTTP codes or CLI output."""
from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    code = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Problem:
    """One config problem, located as precisely as the YAML allows."""

    file: str
    line: int | None
    col: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return f"{where}: {self.path + ': ' if self.path else ''}{self.message}"


class ConfigInvalid(EngineError):
    code = "config_invalid"

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.col or 0, p.path))
        super().__init__(f"{len(self.problems)} problem(s) in the configuration:\n"
                         + "\n".join(str(p) for p in self.problems))


class NotFound(EngineError):
    code = "not_found"


class Forbidden(EngineError):
    code = "forbidden"


class Conflict(EngineError):
    """A stale version, or a state change that lost a race."""

    code = "conflict"

    def __init__(self, message: str, current: dict | None = None):
        super().__init__(message)
        self.current = current


class ValidationFailed(EngineError):
    """Every field error of one write at once: {field: message}."""

    code = "validation_failed"

    def __init__(self, fields: dict[str, str], message: str = "The record has invalid fields."):
        super().__init__(message)
        self.fields = fields


class BadRequest(EngineError):
    code = "bad_request"


class QueryTimeout(BadRequest):
    """A statement ran past the database's statement timeout (a sort on an unindexed field of a
    huge table, a search of one character): refused with the reason, the server keeps serving."""

    code = "query_timeout"


class RuleError(EngineError):
    """A rule expression that cannot be compiled or failed at run time."""

    code = "rule_error"

    def __init__(self, message: str, rule: str | None = None, source: str | None = None,
                 record: str | None = None):
        parts = [message]
        if rule:
            parts.append(f"rule {rule!r}")
        if source:
            parts.append(f"in {source}")
        if record:
            parts.append(f"on {record}")
        super().__init__("; ".join(parts))
        self.rule, self.source, self.record = rule, source, record


class MigrationRefused(EngineError):
    code = "migration_refused"

    def __init__(self, message: str, details: list[str] | None = None):
        super().__init__(message + ("\n" + "\n".join("  " + d for d in details) if details else ""))
        self.details = details or []
