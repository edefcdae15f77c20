"""A throw-away database for a benchmark: a SQLite file in a temp folder, or a fresh schema in the
given PostgreSQL database, dropped by `cleanup()`."""
from __future__ import annotations

import tempfile
import uuid


def throwaway(url: str | None, name: str):
    """(engine, cleanup)."""
    import sqlalchemy as sa

    from engine.db import make_engine
    if not url:
        return make_engine(f"sqlite:///{tempfile.mkdtemp(prefix='crm-bench-')}/{name}.db"), (lambda: None)
    if not url.startswith("postgresql"):
        return make_engine(url), (lambda: None)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}")

    def cleanup():
        eng.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return eng, cleanup
