"""engine/ is the metadata runtime: no Flask, and no entity of a pack named in code."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_never_imports_flask():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "engine").rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+flask", p.read_text(encoding="utf-8"), re.M)]
    assert offenders == []


# Words of the platform's own organisation model (sys_user.team / sys_user.region, sys_team,
# sys_region): generic code may name them even though a pack may also call an entity so.
ORG_WORDS = {"team", "region"}


def test_no_pack_entity_named_in_generic_code():
    names = set()
    for f in (ROOT / "config" / "entities").glob("*.yaml"):
        m = re.search(r"^entity:\s*['\"]?([a-z_][a-z0-9_]*)", f.read_text(encoding="utf-8"), re.M)
        if m:
            names.add(m.group(1))
    names -= ORG_WORDS
    hits = []
    for d in ("engine", "platform_", "ui"):
        for p in (ROOT / d).rglob("*.py"):
            text = p.read_text(encoding="utf-8")
            for n in names:
                if re.search(r"['\"]" + re.escape(n) + r"['\"]", text):
                    hits.append(f"{p.relative_to(ROOT)}: {n}")
    assert hits == []
