"""Record pages: read-only sections, child rows, related lists, timeline, workflow, quick actions."""


def test_record_page_sections_related_lists_and_timeline(make, admin):
    org = make("org", name="杭州尚祈", email="h@x.cn", level="high", revenue="1234.5", tags=["a", "b"])
    make("person", name="Li Lei", org=org["id"])
    make("person", name="Han Meimei", org=org["id"])
    make("touch", subject="First call", kind="call", org=org["id"], at="2024-05-01T10:00")
    make("deal", name="Big deal", org=org["id"], lines=[{"item": "X", "quantity": "2", "price": "10"}])
    page = admin.get(f"/e/org/{org['id']}").get_data(as_text=True)
    assert "<h1>杭州尚祈</h1>" in page
    assert "1,234.50" in page and "High" in page and "A, B" in page
    assert "People" in page and "Li Lei" in page and "Han Meimei" in page
    assert "Deals" in page and "Big deal" in page and "Touches" in page
    assert "Timeline" in page and "2024-05-01 10:00" in page
    tl = page[page.index("Timeline"):]
    assert tl.index("Big deal") < tl.index("2024-05-01 10:00")  # newest first
    assert f'href="/e/person/new?org={org["id"]}"' in page


def test_record_page_shows_child_rows_and_stage_bar_and_transitions(make, admin):
    org = make("org", name="O", email="o@x.cn")
    deal = make("deal", name="D", org=org["id"], probability="20",
                lines=[{"item": "Widget", "quantity": "2", "price": "10"}, {"item": "Gadget", "quantity": "1", "price": "5"}])
    page = admin.get(f"/e/deal/{deal['id']}").get_data(as_text=True)
    assert "Widget" in page and "Gadget" in page and "25.00" in page
    assert "stage-current" in page and "Open" in page
    assert f'action="/e/deal/{deal["id"]}/transition/win"' in page
    assert 'name="comment"' in page  # lose needs a comment


def test_transition_from_the_record_page(make, admin):
    org = make("org", name="O", email="o@x.cn")
    deal = make("deal", name="D", org=org["id"])
    r = admin.post(f"/e/deal/{deal['id']}/transition/win")
    assert r.status_code == 302
    page = admin.get(f"/e/deal/{deal['id']}").get_data(as_text=True)
    assert "Won" in page


def test_quick_actions_open_the_linking_form_prefilled(make, admin):
    org = make("org", name="O", email="o@x.cn")
    page = admin.get(f"/e/org/{org['id']}").get_data(as_text=True)
    assert "Log Call" in page and "Log Visit" in page and "Log Note" in page
    url = f"/e/touch/new?_dialog=1&org={org['id']}&kind=visit"
    part = admin.get(url, hx=True).get_data(as_text=True)
    assert "<html" not in part and 'value="visit" selected' in part and f'name="org" value="{org["id"]}"' in part
    r = admin.post("/e/touch/new", {"_dialog": "1", "subject": "Went there", "kind": "visit", "org": str(org["id"])},
                   hx=True)
    assert r.status_code == 204 and "recordSaved" in r.headers["HX-Trigger"]
    related = admin.get(f"/e/org/{org['id']}?_block=related", hx=True).get_data(as_text=True)
    assert "<html" not in related and "Went there" in related


def test_missing_record_is_404(admin):
    assert admin.get("/e/org/99999").status_code == 404
    assert admin.get("/e/org/99999/edit").status_code == 404


def test_delete_from_the_record_page(make, admin):
    org = make("org", name="Gone", email="g@x.cn")
    r = admin.post(f"/e/org/{org['id']}/delete", {"version": str(org["version"])})
    assert r.status_code == 302
    assert admin.get(f"/e/org/{org['id']}").status_code == 404


def test_record_page_hides_what_visible_if_hides(make, admin):
    org = make("org", name="O", email="o@x.cn")
    hot = make("deal", name="Hot", org=org["id"], probability="80", close_on="2030-01-01")
    cold = make("deal", name="Cold", org=org["id"], probability="5", lost_reason="too small")
    assert "Lost reason" not in admin.get(f"/e/deal/{hot['id']}").get_data(as_text=True)
    page = admin.get(f"/e/deal/{cold['id']}").get_data(as_text=True)
    assert "Lost reason" in page and "too small" in page
