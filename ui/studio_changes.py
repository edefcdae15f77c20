"""Studio: the raw YAML editor, Draft → Plan → Apply (/admin/changes) and History (/admin/versions)."""
from __future__ import annotations

import difflib

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import BadRequest, NotFound
from engine.values import MAX_ID
from platform_ import configstore

from platform_ import studio_drafts
from .studio_base import admin, drafts, engine, files, plan, save, uid
from .studio_yaml import problem_rows
from .web import bp, render, runtime

MAX_TEXT = 500_000


def _path_ok(path: str) -> str:
    try:
        configstore.check_files({path: ""})
    except configstore.Refused:
        raise BadRequest(_("%(path)s is not a .yaml file inside the config folder.", path=path))
    return path


def _text_arg() -> str:
    text = request.form.get("text", "")
    if len(text) > MAX_TEXT:
        raise BadRequest(_("The file is too large for the editor."))
    return text.replace("\r\n", "\n")


# ---- raw YAML editor ---------------------------------------------------------------------------
def _check(path: str, text: str) -> dict:
    """Problems of the whole configuration with this text in place: this file's first, by line."""
    result = plan({**drafts(), path: text})
    rows = problem_rows(result["problems"])
    rows.sort(key=lambda r: (r["path"] != path, r["path"] or "~", r["line"] or 0))
    return {"rows": rows, "steps": result["steps"], "path": path}


@bp.get("/admin/files/new")
@login_required
def studio_file_new():
    admin()
    path = _path_ok((request.args.get("path") or "").strip())
    return redirect(url_for("ui.studio_file", path=path))


@bp.route("/admin/files/<path:path>", methods=["GET", "POST"])
@login_required
def studio_file(path):
    admin()
    _path_ok(path)
    if request.method == "POST":
        if request.form.get("action") == "discard":
            studio_drafts.drop(engine(), uid(), path)
            flash(_("Draft of %(path)s discarded.", path=path), "success")
            return redirect(url_for("ui.studio_file", path=path))
        text = None if request.form.get("action") == "delete" else _text_arg()
        save(path, text, must_be_clean=False)
        flash(_("Draft of %(path)s saved: review and apply it under Changes.", path=path), "success")
        return redirect(url_for("ui.studio_changes") if text is None else url_for("ui.studio_file", path=path))
    ws = files()
    text = ws.get(path)
    mine = drafts()
    return render("studio/file.html", path=path, text=text or "", exists=text is not None or path in mine,
                  in_draft=path in mine, deleted=path in mine and mine[path] is None,
                  check=_check(path, text) if text is not None else None)


@bp.post("/admin/check/file")
@login_required
def studio_file_check():
    admin()
    path = _path_ok(request.form.get("path", ""))
    return render("studio/_check.html", check=_check(path, _text_arg()))


# ---- Draft → Plan → Apply ----------------------------------------------------------------------
def _changes_page(problems=None, status=200, message="", conflict=None):
    mine = drafts()
    folder = configstore.read_folder(runtime().config_dir)
    items = [{"path": p, "kind": "deleted" if t is None else ("changed" if p in folder else "new")}
             for p, t in mine.items()]
    result = plan(mine) if mine else {"problems": [], "steps": []}
    rows = problem_rows(problems if problems is not None else result["problems"])
    version = configstore.sync_history(runtime().engine, runtime().config_dir)
    return render("studio/changes.html", status=status, items=items, steps=result["steps"], rows=rows,
                  risky=any(s["destructive"] for s in result["steps"]), version=version, message=message,
                  conflict=conflict)


@bp.get("/admin/changes")
@login_required
def studio_changes():
    admin()
    return _changes_page()


@bp.post("/admin/changes/discard")
@login_required
def studio_discard():
    admin()
    path = request.form.get("path") or None
    studio_drafts.drop(engine(), uid(), path)
    flash(_("Draft of %(path)s discarded.", path=path) if path else _("All drafts discarded."), "success")
    return redirect(url_for("ui.studio_changes"))


def _base_version():
    raw = request.form.get("base_version", "")
    return int(raw) if raw.isdigit() and int(raw) <= MAX_ID else None


@bp.post("/admin/changes/apply")
@login_required
def studio_apply():
    a = admin()
    mine = drafts()
    message = (request.form.get("message") or "").strip()[:500]
    if not mine:
        flash(_("There is nothing to apply."), "error")
        return redirect(url_for("ui.studio_changes"))
    try:
        number = configstore.apply(runtime(), mine, message, a, bool(request.form.get("allow_destructive")),
                                   _base_version())
    except configstore.Refused as e:
        return _changes_page(problems=e.problems or [e.message], status=e.status, message=message,
                             conflict=e.message if e.status == 409 else None)
    studio_drafts.drop(engine(), uid())
    flash(_("Version %(n)d applied.", n=number), "success")
    return redirect(url_for("ui.studio_versions"))


# ---- History -----------------------------------------------------------------------------------
def _version_or_404(number: int) -> dict:
    v = configstore.get_version(runtime().engine, number) if 0 < number <= MAX_ID else None
    if v is None:
        raise NotFound(_("There is no configuration version %(n)d.", n=number))
    return v


@bp.get("/admin/versions")
@login_required
def studio_versions():
    admin()
    items = configstore.listing(runtime().engine, runtime().config_dir)
    return render("studio/versions.html", items=items)


@bp.get("/admin/versions/<int:number>")
@login_required
def studio_version(number):
    admin()
    v = _version_or_404(number)
    paths = sorted(v["files"] or {})
    path = request.args.get("path") or (paths[0] if paths else None)
    return render("studio/version.html", v=v, paths=paths, path=path, text=(v["files"] or {}).get(path, ""))


def _grouped(a, b):
    """difflib's grouped opcodes as a list of groups (each a list of 5-tuples)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3)


def diff_files(old: dict, new: dict) -> list[dict]:
    out = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        rows = []
        for group in _grouped((a or "").splitlines(), (b or "").splitlines()):
            rows.append({"kind": "gap"})
            al, bl = (a or "").splitlines(), (b or "").splitlines()
            for tag, i1, i2, j1, j2 in group:
                for k in range(max(i2 - i1, j2 - j1)):
                    ia, jb = i1 + k, j1 + k
                    rows.append({"kind": tag, "a_no": ia + 1 if ia < i2 else None, "a": al[ia] if ia < i2 else "",
                                 "b_no": jb + 1 if jb < j2 else None, "b": bl[jb] if jb < j2 else ""})
        out.append({"path": path, "state": "new" if a is None else ("deleted" if b is None else "changed"),
                    "rows": rows})
    return out


@bp.get("/admin/versions/compare")
@login_required
def studio_compare():
    admin()
    try:
        na, nb = int(request.args.get("a", "")), int(request.args.get("b", ""))
    except ValueError:
        raise BadRequest(_("Choose two versions to compare."))
    va, vb = _version_or_404(na), _version_or_404(nb)
    return render("studio/compare.html", va=va, vb=vb, diffs=diff_files(va["files"] or {}, vb["files"] or {}))


@bp.route("/admin/versions/<int:number>/restore", methods=["GET", "POST"])
@login_required
def studio_restore(number):
    a = admin()
    v = _version_or_404(number)
    rt = runtime()
    change = configstore.restore_files(rt, number) or {}
    if request.method == "POST":
        try:
            new = configstore.apply(rt, change, (request.form.get("message") or "").strip()[:500]
                                    or f"restore version {number}", a,
                                    bool(request.form.get("allow_destructive")), _base_version())
        except configstore.Refused as e:
            result = {"problems": e.problems or [e.message], "steps": e.steps}
            return _restore_page(v, change, result, status=e.status)
        flash(_("Version %(old)d restored as version %(n)d.", old=number, n=new), "success")
        return redirect(url_for("ui.studio_versions"))
    return _restore_page(v, change, plan(change) if change else {"problems": [], "steps": []})


def _restore_page(v, change, result, status=200):
    version = configstore.sync_history(runtime().engine, runtime().config_dir)
    return render("studio/restore.html", status=status, v=v, change=change, steps=result["steps"],
                  rows=problem_rows(result["problems"]), risky=any(s["destructive"] for s in result["steps"]),
                  version=version)
