"""The triage pages without JavaScript (forms with CSRF, field errors) and
the API (areas, needs, evidence; problem details on bad input)."""

import re

from sqlalchemy import select

from surveys.extensions import db
from surveys.triage.areas import area_rollup, areas_tree, create_area
from surveys.triage.inbox import InboxFilters, item_by_token, read_inbox
from surveys.triage.needs import create_need, link_item
from surveys.triage.models import Evidence, Need, TriageItem
from tests.conftest import csrf_token_from
from tests.builders.triage import attributed_round

COMMENTS = [("Ana Rep", "Banks keep asking for SAML SSO"), ("Bo Rep", "Globex undercut us on the reporting add-on"),
            ("Cy Rep", "Need Okta single sign-on before the bank signs")]


def _tokens(html):
    return re.findall(r'id="c-([0-9a-f]{16})"', html)


def test_the_inbox_triages_without_javascript_and_shows_field_errors(app, signed_in_client, clock):
    attributed_round(COMMENTS)
    client = signed_in_client(roles=("pm",))
    page = client.get("/triage/")
    assert page.status_code == 200
    html = page.text
    assert "3</strong> comments" in html
    assert html.index("Need Okta single sign-on") < html.index("Globex undercut") < html.index("Banks keep asking")
    assert "Cy Rep" in html and 'src="/static/triage.js"' in html
    first, second, third = _tokens(html)
    token = csrf_token_from(html)
    # A new need without a name: a field error, nothing stored.
    refused = client.post(f"/triage/comments/{first}/new-need", data={"csrf_token": token, "name": " ", "importance": "3"})
    assert refused.status_code == 422 and "Name the need" in refused.text and 'aria-invalid="true"' in refused.text
    assert db.session.scalar(select(Need.id)) is None
    # Without the CSRF token: refused.
    assert client.post(f"/triage/comments/{first}/dismiss").status_code == 400
    made = client.post(f"/triage/comments/{first}/new-need", data={"csrf_token": token, "name": "SAML SSO for banks",
                                                                   "importance": "3"})
    assert made.status_code == 302
    need = db.session.scalar(select(Need))
    # The next comment about SSO gets it as its first suggestion, as a button.
    page = client.get("/triage/").text
    assert _tokens(page) == [second, third]
    assert re.search(rf'value="{need.id}" data-suggestion="1"', page)
    linked = client.post(f"/triage/comments/{third}/link", data={"csrf_token": token, "need_id": str(need.id),
                                                                 "importance": "2"})
    assert linked.status_code == 302
    client.post(f"/triage/comments/{second}/dismiss", data={"csrf_token": token})
    assert "Nothing to triage here" in client.get("/triage/").text
    assert db.session.scalars(select(TriageItem.state).order_by(TriageItem.id)).all().count("dismissed") == 1
    evidence = db.session.scalars(select(Evidence).order_by(Evidence.importance)).all()
    assert [(e.importance, e.text) for e in evidence] == [(2, COMMENTS[0][1]), (3, COMMENTS[2][1])]
    needs_page = client.get("/triage/needs").text
    assert "SAML SSO for banks" in needs_page
    need_page = client.get(f"/triage/needs/{need.id}").text
    assert "Ana Rep" in need_page and "<svg" in need_page
    # Merging from the need's page: its evidence moves to the other need.
    other = client.post(f"/triage/comments/{second}/link", data={"csrf_token": token, "importance": "1",
                                                                 "use_other": "1", "other_need_id": str(need.id)})
    assert other.status_code == 302
    duplicate = create_need(None, "SSO (duplicate)", now=clock())
    db.session.commit()
    refused = client.post(f"/triage/needs/{duplicate.id}/merge", data={"csrf_token": token, "target_id": ""})
    assert refused.status_code == 422 and "Pick the need" in refused.text
    merged = client.post(f"/triage/needs/{duplicate.id}/merge", data={"csrf_token": token, "target_id": str(need.id)})
    db.session.expire_all()
    assert merged.status_code == 302 and db.session.scalars(select(Need.name)).all() == ["SAML SSO for banks"]
    huge = "99536609050978208"
    assert client.get(f"/triage/?set={huge}&team={huge}&area={huge}").status_code == 200
    assert client.get(f"/triage/needs?area={huge}").status_code == 200
    refused = client.post(f"/triage/needs/{need.id}/merge", data={"csrf_token": token, "target_id": huge})
    assert refused.status_code == 422
    # Planned without a note: a field error.
    refused = client.post(f"/triage/needs/{need.id}/status", data={"csrf_token": token, "status": "planned"})
    assert refused.status_code == 422 and "public note" in refused.text


def test_a_leader_cannot_triage(app, signed_in_client):
    attributed_round(COMMENTS)
    assert signed_in_client(roles=("leader",), email="lead@example.com").get("/triage/").status_code == 403


def test_areas_and_mappings_roll_up_option_counts(app, signed_in_client, make_person, clock):
    data, round_, _people = attributed_round(COMMENTS)
    client = signed_in_client(roles=("pm",))
    token = csrf_token_from(client.get("/triage/areas").text)
    refused = client.post("/triage/areas", data={"csrf_token": token, "name": ""})
    assert refused.status_code == 422 and "Name the area" in refused.text
    client.post("/triage/areas", data={"csrf_token": token, "name": "Platform"})
    platform = areas_tree()[0]
    client.post("/triage/areas", data={"csrf_token": token, "name": "Security", "parent_id": platform["id"]})
    security = next(a for a in areas_tree() if a["name"] == "Security")
    assert security["path"] == "Platform / Security"
    mapped = client.post("/triage/areas/mappings", data={"csrf_token": token, "area_id": security["id"],
                                                         "question": f"{data.question_set.id}:gaps:sso"})
    assert mapped.status_code == 302
    rollup = {r["path"]: (r["own"], r["total"]) for r in area_rollup()}
    assert rollup == {"Platform": (0, 3), "Platform / Security": (3, 3)}
    assert "Mapped options per area" in client.get("/triage/needs").text
    # "My areas": the comments of questions mapped to the areas this PM owns (here: none, then Security).
    assert "Nothing to triage here" in client.get("/triage/?area=mine").text
    client.post("/triage/areas/mappings", data={"csrf_token": token, "area_id": security["id"],
                                                "question": f"{data.question_set.id}:why:"})
    assert "Nothing to triage here" in client.get("/triage/?area=mine").text
    from surveys.org.models import Person
    from surveys.triage.models import AreaOwner
    me = db.session.scalar(select(Person).where(Person.email == "staff@example.com"))
    db.session.add(AreaOwner(area_id=platform["id"], person_id=me.id))
    db.session.commit()
    assert "3</strong> comments" in client.get("/triage/?area=mine").text  # Security is inside Platform
    assert "3</strong> comments" in client.get(f"/triage/?area={security['id']}").text


def test_the_api_lists_areas_and_needs_and_links_evidence(app, api_token, make_person, clock):
    attributed_round(COMMENTS)
    headers = api_token()
    pm = make_person(email="pm2@example.com")
    area = create_area(pm, "Security")
    need = create_need(pm, "SAML SSO", area.id, clock())
    db.session.commit()
    token = read_inbox(InboxFilters())["items"][-1]["id"]
    db.session.commit()
    client = app.test_client()
    assert client.get("/api/v1/areas", headers=headers).get_json()[0]["path"] == "Security"
    bad = client.post(f"/api/v1/needs/{need.id}/evidence", headers=headers, json={"comment_id": token, "importance": 5})
    assert bad.status_code == 422 and bad.headers["Content-Type"].startswith("application/problem+json")
    assert "importance" in bad.get_json()["errors"]
    neither = client.post(f"/api/v1/needs/{need.id}/evidence", headers=headers, json={"importance": 2})
    assert neither.status_code == 422
    unknown = client.post(f"/api/v1/needs/{need.id}/evidence", headers=headers,
                          json={"comment_id": "nope", "importance": 2})
    assert unknown.status_code == 422 and "comment_id" in unknown.get_json()["errors"]
    made = client.post(f"/api/v1/needs/{need.id}/evidence", headers=headers, json={"comment_id": token, "importance": 3})
    assert made.status_code == 201 and made.get_json()["text"] == COMMENTS[0][1]
    answers = db.session.scalars(select(TriageItem.answer_id)).all()
    from surveys.models import Answer
    choice = db.session.scalar(select(Answer.id).where(Answer.question_key == "gaps", Answer.id.not_in(answers)))
    option = client.post(f"/api/v1/needs/{need.id}/evidence", headers=headers, json={"answer_id": choice, "importance": 1})
    assert option.status_code == 201 and option.get_json()["kind"] == "option"
    needs = client.get(f"/api/v1/needs?area={area.id}&status=new", headers=headers).get_json()
    assert [(n["name"], n["mentions"], n["importance"], n["revenue"]) for n in needs] == [("SAML SSO", 2, 4, None)]
    assert client.get("/api/v1/needs?status=bogus", headers=headers).status_code == 400
    huge = "99536609050978208"  # beyond a 32-bit id: unknown, never a database error
    assert client.get(f"/api/v1/needs?area={huge}", headers=headers).status_code == 400
    too_big = client.post(f"/api/v1/needs/{need.id}/evidence", headers=headers,
                          json={"answer_id": int(huge), "importance": 1})
    assert too_big.status_code == 422 and "answer_id" in too_big.get_json()["errors"]
    assert client.get("/api/v1/needs?status=planned", headers=headers).get_json() == []
    csv_text = client.get("/api/v1/needs?format=csv", headers=headers).text
    assert csv_text.splitlines()[0].startswith("id,name,area,status") and "SAML SSO" in csv_text
    detail = client.get(f"/api/v1/needs/{need.id}", headers=headers).get_json()
    assert [e["writer"] for e in detail["evidence"]] == ["Ana Rep", "Ana Rep"]
    evidence_csv = client.get(f"/api/v1/needs/{need.id}?format=csv", headers=headers).text.splitlines()
    assert evidence_csv[0] == "id,kind,text,importance,amount,confidential,question_set,period_key,writer,heard_at"
    assert len(evidence_csv) == 3 and "Ana Rep" in evidence_csv[1]
    areas_csv = client.get("/api/v1/areas?format=csv", headers=headers).text.splitlines()
    assert areas_csv == ["id,name,path,parent_id,owners", f"{area.id},Security,Security,,"]
    assert client.get("/api/v1/needs/999", headers=headers).status_code == 404
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/areas", "/needs", "/needs/{need_id}", "/needs/{need_id}/evidence"} <= set(paths)


def test_a_comment_a_spreadsheet_would_run_is_neutralised_in_the_csv(app, api_token, make_person, clock):
    attributed_round([("Eve Rep", '=HYPERLINK("http://evil.example","click")')])
    pm = make_person(email="pm2@example.com")
    need = create_need(pm, "-2+3 formula-looking need", now=clock())
    item = item_by_token(read_inbox(InboxFilters())["items"][0]["id"])
    link_item(pm, item, need, 1, clock())
    db.session.commit()
    headers = api_token()
    evidence = app.test_client().get(f"/api/v1/needs/{need.id}?format=csv", headers=headers).text
    assert "'=HYPERLINK" in evidence and ",=HYPERLINK" not in evidence
    needs = app.test_client().get("/api/v1/needs?format=csv", headers=headers).text
    assert "'-2+3 formula-looking need" in needs
