"""The inbox for a confidential set: comments enter only as the round's
publication plan allows (after the round closes, for groups whose comments
are published), never with a name, and no filter combination narrows a
comment to fewer writers than the comment threshold."""

import itertools

from sqlalchemy import func, select

from surveys.org.models import TEAM_PATH_SEPARATOR, Team
from surveys.extensions import db
from surveys.scorecard.confidentiality import round_plan
from surveys.triage.inbox import InboxFilters, item_by_token, read_inbox
from surveys.triage.models import TriageItem
from surveys.triage.needs import change_status, create_need, link_item
from surveys.triage.models import NeedNotice
from tests.builders.scorecards import ScorecardData
from tests.builders.triage import GAPS, WHY, attributed_round

C = 10  # the set's comment threshold
# (region, segment, writers): EMEA 14, NA 12, APAC 4; Enterprise 20, SMB 10.
LAYOUT = [("EMEA", "Enterprise", 9), ("EMEA", "SMB", 5), ("NA", "Enterprise", 8), ("NA", "SMB", 4),
          ("APAC", "Enterprise", 3), ("APAC", "SMB", 1)]
SHORT = {"key": "blocker", "type": "text", "prompt": "Anything blocking?", "required": False}


def _confidential(status="closed"):
    data = ScorecardData(confidentiality="confidential", min_group_size=5)
    data.question_set.comment_min_group_size = C
    version = data.version([GAPS, WHY, SHORT])
    round_ = data.round("2026-10", version, 9, status=status)
    writers = {}
    number = 0
    for region, segment, count in LAYOUT:
        for _ in range(count):
            number += 1
            person = data.person(team=f"Sales{TEAM_PATH_SEPARATOR}{region}", region=region, segment=segment,
                                 name=f"Zelda Quartz {number:02d}", email=f"zq{number:02d}@example.com")
            text = f"Confidential remark {number:02d}: the customer wants audit logs"
            answers = {"gaps": ["sso"], "why": text}
            if number <= 3:  # only three people answer this one: under the threshold everywhere
                answers["blocker"] = f"Blocker {number}"
            data.respond(round_, person, answers)
            writers[text] = (person, region, segment)
    data.commit()
    return data, round_, writers


def test_no_filter_combination_narrows_a_confidential_comment_below_the_threshold(app, clock):
    _data, round_, writers = _confidential()
    attributed_round([("Open Olga", "Attributed: banks want SSO")], period="2026-11")
    everything = read_inbox(InboxFilters(state="all"))
    shown = {item["text"] for item in everything["items"] if not item["attributed"]}
    assert shown == set(writers)  # the whole round is published overall ...
    assert not any(item["text"].startswith("Blocker") for item in everything["items"])  # ... but not 3 writers
    plan = round_plan(round_)
    published = set(map(tuple, plan.published_comments["why"]))
    # Filters offered: the groups the plan publishes for the comments, plus the attributed round's own.
    field = db.session.scalar(select(Team.id).where(Team.path == "Field sales"))
    from_attributed = {"team": {field}, "region": {"EMEA"}, "segment": {"Enterprise"}}
    for kind in ("team", "region", "segment"):
        offered = {value for value, _label in everything["options"][kind]}
        assert offered <= {value for group_kind, value in published if group_kind == kind} | from_attributed[kind]
    # The layout makes the planner withhold some groups; none of those is offered (but by the attributed round).
    withheld = {group for group, _reason in plan.comments["why"].items()} | set(plan.numbers)
    assert ("region", "APAC") in withheld
    for kind, value in withheld:
        if kind in from_attributed and value not in from_attributed[kind]:
            assert value not in {v for v, _label in everything["options"][kind]}
    every_team = db.session.scalars(select(Team.id)).all()
    regions = [None, "EMEA", "NA", "APAC", "Nowhere"]
    segments = [None, "Enterprise", "SMB"]
    results = []
    for team, region, segment in itertools.product([None, *every_team], regions, segments):
        filters = InboxFilters(team=team, region=region, segment=segment, state="all")
        result = read_inbox(filters, limit=1000)
        texts = {item["text"] for item in result["items"] if not item["attributed"]}
        assert len(texts) == 0 or len(texts) >= C, (team, region, segment, len(texts))
        for item in result["items"]:
            if not item["attributed"]:
                assert set(item) & {"writer", "team", "region", "segment", "submitted_at"} == set()
        for kind in ("team", "region", "segment"):
            for value, count in result["counts"][kind].items():
                if (kind, value) in published:  # a confidential group's count covers whole cells
                    assert count >= C
        results.append(texts)
    assert {0, len(writers)} < {len(texts) for texts in results}  # some filters narrow, within the plan
    # Any two answers differ by nobody or by at least the threshold: no subtraction singles anyone out.
    for a, b in itertools.combinations(results, 2):
        assert len(a - b) == 0 or len(a - b) >= C
    # The writers of a withheld group (APAC, 4 people) are never isolated.
    apac = {text for text, (_p, region, _s) in writers.items() if region == "APAC"}
    assert not any(texts and texts <= apac for texts in results)


def test_no_page_or_api_answer_names_a_confidential_writer(app, signed_in_client, api_token, make_person, clock):
    _data, _round, writers = _confidential()
    client = signed_in_client(roles=("pm",))
    pages = [client.get("/triage/?state=all").text]
    for region in ("EMEA", "NA", "APAC"):
        pages.append(client.get(f"/triage/?region={region}&state=all").text)
    items = read_inbox(InboxFilters())["items"]
    db.session.commit()
    pm = make_person(email="pm2@example.com")
    need = create_need(pm, "Audit logs", now=clock())
    for item in items[:12]:
        link_item(pm, item_by_token(item["id"]), need, 2, clock())
    db.session.commit()
    assert change_status(pm, need, "shipped", "Audit logs shipped in 4.2.", clock()) == []
    db.session.commit()
    assert db.session.scalar(select(func.count(NeedNotice.id))) == 0
    pages += [client.get("/triage/needs").text, client.get(f"/triage/needs/{need.id}").text]
    headers = api_token()
    api = app.test_client()
    pages += [api.get("/api/v1/needs", headers=headers).text, api.get(f"/api/v1/needs/{need.id}", headers=headers).text,
              api.get("/api/v1/needs?format=csv", headers=headers).text]
    # One chosen option of the confidential set cannot be linked one by one.
    from surveys.models import Answer
    choice = db.session.scalar(select(Answer.id).where(Answer.question_key == "gaps"))
    refused = api.post(f"/api/v1/needs/{need.id}/evidence", headers=headers, json={"answer_id": choice, "importance": 2})
    assert refused.status_code == 422 and "confidential" in refused.get_json()["errors"]["answer_id"]
    # The need page points at the round's "you said, we did" instead.
    assert f"/scorecards/rounds/{_round.id}#replies" in pages[-4]
    people = [person for person, _region, _segment in writers.values()]
    for page in pages:
        for person in people:
            assert person.name not in page and person.email not in page
    assert "Confidential remark" in pages[0] and "the writer is not shown" in pages[0]


def test_an_open_confidential_round_keeps_its_comments_out_of_the_inbox(app, clock, signed_in_client):
    _data, _round, writers = _confidential(status="open")
    assert read_inbox(InboxFilters(state="all"))["total"] == 0
    db.session.commit()
    token = db.session.scalar(select(TriageItem.token))
    client = signed_in_client(roles=("pm",))
    page = client.get("/triage/")
    assert "Confidential remark" not in page.text
    from tests.conftest import csrf_token_from
    refused = client.post(f"/triage/comments/{token}/dismiss", data={"csrf_token": csrf_token_from(page.text)})
    assert refused.status_code == 404
