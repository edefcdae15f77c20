"""The user's language: `?lang=` > session > user setting > Accept-Language; catalogs compiled on start.

UI chrome strings go through Flask-Babel (`_()` in templates and views); labels of entities,
fields and options come from the YAML through `label_of`. The .po files are the source; the .mo
files are compiled from them when missing or older, so a clean checkout works without a build step.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import request, session
from flask_login import current_user

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
TRANSLATIONS = HERE / "translations"
LANGS = ("en", "zh")
BABEL_LOCALE = {"en": "en", "zh": "zh_Hans"}
HTML_LANG = {"en": "en", "zh": "zh-CN"}


def normalize(code: str | None) -> str | None:
    """'zh', 'zh-CN', 'zh_CN', 'zh-Hans' → 'zh'; 'en', 'en-US' → 'en'; anything else → None."""
    if not code:
        return None
    code = code.strip().lower().replace("_", "-")
    if code.startswith("zh"):
        return "zh"
    if code.startswith("en"):
        return "en"
    return None


def from_accept_language() -> str | None:
    for value, _q in request.accept_languages:
        lang = normalize(value)
        if lang:
            return lang
    return None


def current_lang() -> str:
    """The language of this request (cached on the request)."""
    if not request:
        return "en"
    cached = getattr(request, "_ui_lang", None)
    if cached:
        return cached
    lang = normalize(request.args.get("lang")) or normalize(session.get("lang"))
    if not lang and current_user and getattr(current_user, "is_authenticated", False):
        lang = current_user.lang
    lang = lang or from_accept_language() or "en"
    request._ui_lang = lang
    return lang


def babel_locale() -> str:
    return BABEL_LOCALE[current_lang()]


def compile_catalogs(directory: Path = TRANSLATIONS) -> Path:
    """Compile every messages.po whose .mo is missing or older; return the folder Babel should read.

    If the package folder is read-only, the catalogs are compiled into a temporary folder instead.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    pos = sorted(directory.glob("*/LC_MESSAGES/messages.po"))
    stale = [p for p in pos if not p.with_suffix(".mo").exists()
             or p.with_suffix(".mo").stat().st_mtime < p.stat().st_mtime]
    if not stale:
        return directory
    target = directory
    for po in stale:
        mo = po.with_suffix(".mo")
        try:
            _compile(po, mo, read_po, write_mo)
        except OSError:
            target = Path(tempfile.mkdtemp(prefix="crm-ui-i18n-"))
            break
    else:
        return directory
    for po in pos:
        rel = po.relative_to(directory).with_suffix(".mo")
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        _compile(po, target / rel, read_po, write_mo)
    log.info("UI catalogs compiled into %s (package folder not writable)", target)
    return target


def _compile(po: Path, mo: Path, read_po, write_mo) -> None:
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name)
    tmp = mo.with_suffix(".mo.part")
    with tmp.open("wb") as f:
        write_mo(f, catalog)
    tmp.replace(mo)


def _cjk(ch: str) -> bool:
    """A character of a script written without spaces between words (Han, kana, CJK punctuation)."""
    o = ord(ch)
    return (0x3000 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF
            or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF)


def words(*parts) -> str:
    """Join words as the language writes them: "New" + "Customer" → "New Customer", but
    "新建" + "客户" → "新建客户" (no space where both neighbours are Chinese). Empty parts are skipped."""
    out = ""
    for p in (str(p).strip() for p in parts if p is not None):
        if not p:
            continue
        if out and not (_cjk(out[-1]) and _cjk(p[0])):
            out += " "
        out += p
    return out
