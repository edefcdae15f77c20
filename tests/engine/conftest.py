import pytest

from engine.actor import Actor
from engine.db import make_engine
from engine.loader import load_config
from engine.migrator import Migrator
from engine.store import RecordStore
from tests.conftest import FIXTURES

ADMIN = Actor(id=None, username="admin", roles=("admin",))


@pytest.fixture
def engine_db(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def mini_store(engine_db):
    cfg = load_config(FIXTURES / "mini")
    m = Migrator(engine_db, cfg)
    m.apply()
    return RecordStore(engine_db, cfg, m.metadata)
