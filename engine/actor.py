"""Who is acting: passed into every store call so permissions plug into the store's queries."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    id: int | None
    username: str = "system"
    roles: tuple = ()
    language: str = "en"
    manager: int | None = None
    full_name: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def has_role(self, *roles) -> bool:
        return self.is_admin or any(r in self.roles for r in roles)


SYSTEM_ACTOR = Actor(id=None, username="system", roles=("admin",))
