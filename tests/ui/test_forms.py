"""Forms: widgets per type, create/edit, every error at once with the input kept, conflicts,
child rows, live preview (computed, visible_if, required_if, one-field validation), uploads, XSS."""
import io
import re

XSS = "<script>alert('x')</script>"


def test_new_form_has_a_widget_per_field_type(admin):
    page = admin.get("/e/org/new").get_data(as_text=True)
    assert 'type="email" name="email"' in page
    assert 'type="tel" name="phone"' in page and 'type="url" name="website"' in page
    assert '<select name="level"' in page and 'value="low" selected' in page  # default
    assert 'type="checkbox" name="tags" value="a"' in page
    assert 'type="number" name="revenue"' in page and 'step="0.01"' in page
    assert 'type="number" name="staff"' in page and 'step="1"' in page
    assert 'type="text" name="since"' in page and 'placeholder="YYYY-MM-DD"' in page  # never the locale's mm/dd/yyyy
    assert 'role="switch" name="active" value="true" checked' in page
    assert '<textarea name="notes"' in page and 'type="file" name="logo"' in page
    assert 'for="name"' in page and 'id="name"' in page  # labels bound to inputs
    assert "hx-post" in page and 'name="csrf_token"' in page
    deal = admin.get("/e/deal/new").get_data(as_text=True)
    assert 'type="datetime-local"' not in deal and 'name="_lk_org"' in deal and 'id="cf-amount"' in deal
    assert 'id="rows-lines"' in deal and "/e/deal/row/lines" in deal
    assert 'aria-labelledby="lbl-stage">Open</output>' in deal  # the state a new record starts in
    touch = admin.get("/e/touch/new").get_data(as_text=True)
    assert 'name="at"' in touch and 'data-date="datetime"' in touch and 'placeholder="YYYY-MM-DD HH:MM"' in touch


def test_generated_form_for_an_entity_without_a_form_file(admin):
    page = admin.get("/e/person/new").get_data(as_text=True)
    for name in ("name", "org", "email", "birthday"):
        assert f'name="{name}"' in page


def test_create_and_edit_round_trip(admin, rt, admin_actor):
    r = admin.post("/e/org/new", [("name", "New Co"), ("email", "n@x.cn"), ("level", "high"), ("tags", "a"),
                                  ("tags", "c"), ("revenue", "99.5"), ("staff", "7"), ("since", "2024-02-03"),
                                  ("active", "false"), ("active", "true"), ("notes", "line1\nline2")])
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    rec = rt.store.get("org", rid, admin_actor)
    assert rec["tags"] == ["a", "c"] and str(rec["revenue"]) == "99.50" and rec["active"] is True
    edit = admin.get(f"/e/org/{rid}/edit").get_data(as_text=True)
    assert 'value="New Co"' in edit and f'name="version" value="{rec["version"]}"' in edit
    r = admin.post(f"/e/org/{rid}/edit", {"name": "New Co 2", "email": "n@x.cn", "level": "low", "active": "false",
                                          "version": str(rec["version"]), "revenue": "", "staff": "7"})
    assert r.status_code == 302
    rec = rt.store.get("org", rid, admin_actor)
    assert rec["name"] == "New Co 2" and rec["active"] is False and rec["revenue"] is None and rec["tags"] == []


def test_all_errors_at_once_and_the_input_is_kept(admin):
    r = admin.post("/e/org/new", {"name": "", "email": "not-an-email", "revenue": "-5", "staff": "1.5",
                                  "website": "ftp://x", "since": "2024-13-45", "notes": "keep this text"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    for fid in ("name", "email", "revenue", "staff", "website", "since"):
        assert re.search(rf'id="err-{fid}" class="error" role="alert">[^<]+<', page), fid
    assert 'value="not-an-email"' in page and "keep this text" in page and 'value="ftp://x"' in page
    assert "Please correct the 6 problem(s) below." in page


def test_errors_in_chinese(admin):
    r = admin.post("/e/org/new?lang=zh", {"name": ""})
    page = r.get_data(as_text=True)
    assert "必填" in page and "请更正" in page


def test_htmx_save_with_errors_returns_the_form_fragment(admin):
    r = admin.post("/e/org/new", {"name": ""}, hx=True)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in page and page.lstrip().startswith("<form")


def test_htmx_save_success_redirects_with_hx_redirect(admin):
    r = admin.post("/e/org/new", {"name": "Hx Co", "email": "h@x.cn"}, hx=True)
    assert r.status_code == 204 and r.headers["HX-Redirect"].startswith("/e/org/")


def test_errors_only_the_store_knows_show_on_the_field(make, admin):
    r = admin.post("/e/deal/new", {"name": "D", "org": "99999", "_lk_org": "Ghost", "probability": "20"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'id="err-org" class="error" role="alert">refers to Organisation #99999', page)
    assert 'value="Ghost"' in page


def test_required_if_from_the_form_file(make, admin):
    org = make("org", name="O", email="o@x.cn")
    r = admin.post("/e/deal/new", {"name": "D", "org": str(org["id"]), "probability": "60"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and re.search(r'id="err-close_on" class="error" role="alert">is required<', page)


def test_child_rows_are_saved_in_order_and_blank_rows_dropped(make, admin, rt, admin_actor):
    org = make("org", name="O", email="o@x.cn")
    r = admin.post("/e/deal/new", [("name", "With lines"), ("org", str(org["id"])), ("_lk_org", "O"),
                                   ("lines-n1-item", "First"), ("lines-n1-quantity", "2"), ("lines-n1-price", "10"),
                                   ("lines-n2-item", ""), ("lines-n2-quantity", ""), ("lines-n2-price", ""),
                                   ("lines-n3-item", "Second"), ("lines-n3-quantity", "1"), ("lines-n3-price", "5.5")])
    assert r.status_code == 302, r.get_data(as_text=True)[:3000]
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    rec = rt.store.get("deal", rid, admin_actor)
    assert [x["item"] for x in rec["lines"]] == ["First", "Second"] and str(rec["amount"]) == "25.50"
    edit = admin.get(f"/e/deal/{rid}/edit").get_data(as_text=True)
    assert 'name="lines-0-item" value="First"' in edit and 'id="cf-lines-1-amount"' in edit
    # removing a row = not sending it
    r = admin.post(f"/e/deal/{rid}/edit", {"name": "With lines", "org": str(org["id"]), "version": str(rec["version"]),
                                           "lines-1-item": "Second", "lines-1-quantity": "1", "lines-1-price": "5.5"})
    assert r.status_code == 302
    rec = rt.store.get("deal", rid, admin_actor)
    assert [x["item"] for x in rec["lines"]] == ["Second"]


def test_child_row_errors_keep_the_rows(make, admin):
    org = make("org", name="O", email="o@x.cn")
    r = admin.post("/e/deal/new", {"name": "D", "org": str(org["id"]), "lines-a-item": "",
                                   "lines-a-quantity": "abc", "lines-b-item": "Fine", "lines-b-quantity": "1"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'name="lines-b-item" value="Fine"' in page and 'value="abc"' in page
    assert "row 1" in page


def test_new_row_fragment(admin):
    part = admin.get("/e/deal/row/lines", hx=True).get_data(as_text=True)
    assert part.lstrip().startswith("<tr") and re.search(r'name="lines-n[0-9a-f]+-item"', part)
    assert admin.get("/e/deal/row/name").status_code == 404


def test_preview_recomputes_computed_fields(admin):
    r = admin.post("/e/deal/preview", {"probability": "50", "lines-x-item": "A", "lines-x-quantity": "3",
                                       "lines-x-price": "10", "lines-y-item": "B", "lines-y-quantity": "1",
                                       "lines-y-price": "2.5", "_changed": "lines-y-price"}, hx=True)
    part = r.get_data(as_text=True)
    assert '<output id="cf-amount" hx-swap-oob="true">32.50</output>' in part
    assert '<output id="cf-weighted" hx-swap-oob="true">16.25</output>' in part
    assert '<output id="cf-lines-x-amount" hx-swap-oob="true">30.00</output>' in part


def test_preview_visible_if_and_required_if(admin):
    part = admin.post("/e/deal/preview", {"probability": "5"}, hx=True).get_data(as_text=True)
    hidden = re.search(r'data-hidden="([^"]*)"', part).group(1).split(",")
    assert "lost_reason" not in hidden
    part = admin.post("/e/deal/preview", {"probability": "70"}, hx=True).get_data(as_text=True)
    assert "lost_reason" in re.search(r'data-hidden="([^"]*)"', part).group(1)
    assert "close_on" in re.search(r'data-required="([^"]*)"', part).group(1)


def test_preview_validates_the_changed_field_only(admin):
    part = admin.post("/e/org/preview", {"email": "nope", "name": "", "_changed": "email"}, hx=True).get_data(as_text=True)
    assert 'id="err-email"' in part and "nope" in part and 'id="err-name"' not in part
    part = admin.post("/e/org/preview", {"email": "ok@x.cn", "_changed": "email"}, hx=True).get_data(as_text=True)
    assert '<small id="err-email" class="error" role="alert" hx-swap-oob="true"></small>' in part


def test_conflict_is_explained_and_can_be_overwritten(make, admin, sam, rt, admin_actor):
    org = make("org", name="Shared", email="s@x.cn")
    sam.post(f"/e/org/{org['id']}/edit", {"name": "Sam was here", "email": "s@x.cn", "version": "1"})
    r = admin.post(f"/e/org/{org['id']}/edit", {"name": "Admin's name", "email": "s@x.cn", "version": "1"})
    page = r.get_data(as_text=True)
    assert r.status_code == 409
    assert "changed by Sam Seller at" in page and "Reload" in page and "Overwrite" in page
    assert "Admin&#39;s name" in page  # what the admin typed is still there
    r = admin.post(f"/e/org/{org['id']}/edit", {"name": "Admin's name", "email": "s@x.cn", "version": "1",
                                                "_overwrite": "2"})
    assert r.status_code == 302
    assert rt.store.get("org", org["id"], admin_actor)["name"] == "Admin's name"


def test_attachment_upload_keep_and_remove(admin, rt, admin_actor):
    r = admin.post("/e/org/new", {"name": "Files", "email": "f@x.cn",
                                  "logo": (io.BytesIO(b"PNGDATA"), "logo.png", "image/png")},
                   content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    rec = rt.store.get("org", rid, admin_actor)
    assert rec["logo"]["name"] == "logo.png" and rec["logo"]["size"] == 7
    page = admin.get(f"/e/org/{rid}").get_data(as_text=True)
    m = re.search(r'href="(/files/[0-9a-f]{64})\?name=logo.png"', page)
    assert m and admin.get(m.group(1)).get_data() == b"PNGDATA"
    # an edit that does not touch the file keeps it
    admin.post(f"/e/org/{rid}/edit", {"name": "Files 2", "email": "f@x.cn", "version": str(rec["version"])},
               content_type="multipart/form-data")
    assert rt.store.get("org", rid, admin_actor)["logo"]["name"] == "logo.png"
    rec = rt.store.get("org", rid, admin_actor)
    admin.post(f"/e/org/{rid}/edit", {"name": "Files 2", "email": "f@x.cn", "version": str(rec["version"]),
                                      "_remove_logo": "1"}, content_type="multipart/form-data")
    assert rt.store.get("org", rid, admin_actor)["logo"] is None


def test_link_prefill_from_the_query_shows_the_title(make, admin):
    org = make("org", name="Prefilled Org", email="p@x.cn")
    page = admin.get(f"/e/person/new?org={org['id']}").get_data(as_text=True)
    assert f'name="org" value="{org["id"]}"' in page and 'value="Prefilled Org"' in page


def test_script_payloads_are_escaped_everywhere(make, admin, rt, admin_actor):
    org = make("org", name=XSS, email="x@x.cn", phone="+86 571 1234", website="https://x.example/?q=<b>",
               notes=XSS, level="high", tags=["a"])
    make("person", name=XSS, org=org["id"])
    deal = make("deal", name=XSS, org=org["id"], lines=[{"item": XSS, "quantity": "1", "price": "1"}])
    for path in (f"/e/org/{org['id']}", "/e/org", f"/e/org/{org['id']}/edit", f"/e/deal/{deal['id']}",
                 f"/e/deal/{deal['id']}/edit", "/e/person", "/search?q=script", "/e/org/lookup?q=script",
                 f"/e/person/new?org={org['id']}"):
        page = admin.get(path).get_data(as_text=True)
        assert "<script>alert(" not in page, path
    # invalid input typed into every kind of field comes back escaped
    bad = {k: XSS for k in ("name", "email", "phone", "website", "level", "revenue", "staff", "since", "notes",
                            "tags", "active")}
    page = admin.post("/e/org/new", bad).get_data(as_text=True)
    assert "<script>alert(" not in page and "&lt;script&gt;" in page
    page = admin.post("/e/deal/new", {"name": XSS, "org": XSS, "_lk_org": XSS, "probability": XSS,
                                      "close_on": XSS, "lines-a-item": XSS, "lines-a-price": XSS}).get_data(as_text=True)
    assert "<script>alert(" not in page
    part = admin.post("/e/deal/preview", {"probability": XSS, "_changed": "probability"}, hx=True).get_data(as_text=True)
    assert "<script>alert(" not in part
    page = admin.get(f"/e/org?name__contains={XSS}").get_data(as_text=True)
    assert "<script>alert(" not in page


def test_field_messages_in_chinese(admin):
    page = admin.post("/e/org/new?lang=zh", {"name": "x", "email": "nope", "revenue": "abc", "staff": "-1",
                                             "since": "2024-13-01", "website": "ftp://x"}).get_data(as_text=True)
    for text in ("不是有效的邮箱地址", "不是数字", "不能小于 0", "不是日期", "不是网址"):
        assert text in page, text
    part = admin.post("/e/org/preview", {"email": "nope", "_changed": "email"}, hx=True).get_data(as_text=True)
    assert "不是有效的邮箱地址" in part


def test_message_shapes_unknown_to_the_table_pass_through():
    from ui.messages import localize
    assert localize("something new", "zh") == "something new"
    assert localize("'x' is not a number", "en") == "'x' is not a number"
    assert localize("at most 5 characters (7 given)", "zh") == "最多 5 个字符（当前 7 个）"
