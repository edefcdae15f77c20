"""H7: backup and restore, tested — including SQLite → PostgreSQL and a refused restore."""
import pytest
import sqlalchemy as sa

from engine.backup import backup, restore
from engine.db import make_engine
from engine.loader import load_config
from engine.migrator import Migrator
from engine.statemachine import Workflows
from engine.store import RecordStore
from tests.conftest import FIXTURES
from tests.engine.conftest import ADMIN


def test_h7_backup_restore_round_trip(db_url, tmp_path):
    src_engine = make_engine(f"sqlite:///{tmp_path}/src.db")
    cfg = load_config(FIXTURES / "flow")
    m = Migrator(src_engine, cfg)
    m.apply()
    store = RecordStore(src_engine, cfg, m.metadata)
    Workflows(store).register_definitions()
    p = store.create("paper", {"title": "合同 A", "amount": "1234.56"}, ADMIN)
    memo = store.create("memo", {"text": "m", "paper": p["id"]}, ADMIN)
    store.update("paper", p["id"], {"title": "合同 B"}, ADMIN)
    (tmp_path / "files" / "ab").mkdir(parents=True)
    (tmp_path / "files" / "ab" / ("ab" + "0" * 62)).write_bytes(b"file body")
    manifest = backup(src_engine, m.metadata, tmp_path / "b.zip", tmp_path / "files")
    assert manifest["tables"]["e_paper"] == 1 and manifest["files"] == 1

    dst_engine = make_engine(db_url)
    m2 = Migrator(dst_engine, cfg)
    m2.apply()
    dst = RecordStore(dst_engine, cfg, m2.metadata)
    dst.create("paper", {"title": "to be replaced"}, ADMIN)
    restore(dst_engine, m2.metadata, tmp_path / "b.zip", tmp_path / "restored")
    got = dst.get("paper", p["id"], ADMIN)
    assert got["title"] == "合同 B" and str(got["amount"]) == "1234.56" and got["version"] == 2
    assert dst.get("memo", memo["id"], ADMIN)["paper"] == p["id"]
    with dst_engine.connect() as c:
        assert c.execute(sa.text("select count(*) from e_paper")).scalar() == 1
    assert dst.create("paper", {"title": "next"}, ADMIN)["id"] == p["id"] + 1     # sequences continue
    assert (tmp_path / "restored" / "ab" / ("ab" + "0" * 62)).read_bytes() == b"file body"
    dst_engine.dispose()


def test_h7_restore_refuses_a_backup_of_another_config(tmp_path):
    a = make_engine(f"sqlite:///{tmp_path}/a.db")
    ma = Migrator(a, load_config(FIXTURES / "flow"))
    ma.apply()
    backup(a, ma.metadata, tmp_path / "b.zip")
    b = make_engine(f"sqlite:///{tmp_path}/b.db")
    mb = Migrator(b, load_config(FIXTURES / "mini"))
    mb.apply()
    RecordStore(b, mb.config, mb.metadata).create("account", {"name": "keep", "email": "k@x.cn"}, ADMIN)
    with pytest.raises(ValueError, match="e_paper"):
        restore(b, mb.metadata, tmp_path / "b.zip")
    with b.connect() as c:
        assert c.execute(sa.text("select name from e_account")).scalar() == "keep"
