"""Issue 12, "Confidential means confidential": the six ways a numerate
leader could single out one rep of a confidential round using only the
pages, the API and the exports, each as a regression test read through
HTTP, plus the rule itself checked on what was read (knowing the
memberships, which the reader does not), attributed sets unaffected and an
all-large org losing nothing."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from cadence.links import invitation_token
from cadence.models import Invitation, Round
from cadence.planner import tick
from surveys.extensions import db
from surveys.models import QuestionSet
from tests.builders.scorecards import FIRST_OPEN, ScorecardData

READERS = ("pm", "leader", "admin")
KINDS = ("team", "region", "segment")


# -- What a reader can read, and the rule checked on it ------------------------------------


class Org:
    """A ScorecardData org that remembers each person's slice, answers and comment."""

    def __init__(self, confidentiality="confidential", min_group_size=5, comment_min_group_size=10, **kw):
        self.data = ScorecardData(confidentiality=confidentiality, min_group_size=min_group_size, **kw)
        self.data.question_set.comment_min_group_size = comment_min_group_size
        self.version = self.data.version([
            {"key": "score", "type": "scale"},
            {"key": "why", "type": "text", "required": False},
        ])
        self.people = {}  # person id -> {"team", "region", "segment", "answered", "score", "why"}

    def round(self, key="2026-01", months=0, status="closed"):
        return self.data.round(key, self.version, months, status=status)

    def add(self, round_, count, team, region, segment, score=3, why=None, answer=True):
        for i in range(count):
            person = self.data.person(team=team, region=region, segment=segment)
            answers = {"score": score if isinstance(score, int) else score(i)}
            text = why(i) if callable(why) else why
            if text:
                answers["why"] = text
            if answer:
                self.data.respond(round_, person, answers)
            else:
                self.data.invite(round_, person)
            self.people[person.id] = {"team": team, "region": region, "segment": segment, "answered": answer,
                                      "score": answers["score"], "why": text if answer else None}

    def members(self, kind, name, who=lambda p: p["answered"]):
        def inside(person):
            if kind in (None, "overall"):
                return True
            if kind == "team":
                return person["team"] == name or person["team"].startswith(name + " / ")
            return person[kind] == name

        return frozenset(pid for pid, person in self.people.items() if who(person) and inside(person))


def read_cards(client, headers, round_id):
    return {kind: client.get(f"/api/v1/rounds/{round_id}/scorecard" + (f"?slice={kind}" if kind else ""),
                             headers=headers).get_json() for kind in (None, *KINDS)}


def published_number_groups(cards):
    """(kind, name) of every group a card shows any number for (n, invited, rate or metrics)."""
    groups = set()
    overall = cards[None]
    if overall["response_rate"]["responded"] is not None or any(q["n"] is not None for q in overall["questions"]):
        groups.add((None, None))
    for kind in KINDS:
        for slice_ in cards[kind]["slices"]:
            shown = [slice_.get(f) for f in ("n", "invited", "rate")] + [q["n"] for q in slice_["questions"]]
            if any(value is not None for value in shown):
                groups.add((kind, slice_["name"]))
    return groups


def cells(universe, groups):
    signature = defaultdict(set)
    for unit in universe:
        signature[tuple(unit in group for group in groups)].add(unit)
    return list(signature.values())


def assert_cells_rule(universe, groups, k, what):
    small = [cell for cell in cells(universe, groups) if cell and len(cell) < k]
    assert not small, f"{what}: cells under {k}: {[len(c) for c in small]}"


def export_rows(client, headers, round_id):
    response = client.get(f"/api/v1/rounds/{round_id}/responses", headers=headers)
    assert response.status_code == 200, response.text
    return response.get_json()


# -- 1. Across slice kinds --------------------------------------------------------------------


def cross_kind_org():
    """EMEA has 11 respondents, Enterprise 10, and all 10 Enterprise reps are in
    EMEA: EMEA minus Enterprise is one Mid-Market rep, who wrote a comment."""
    org = Org()
    round_ = org.round()
    org.add(round_, 10, "Sales", "EMEA", "Enterprise", score=4, why=lambda i: f"enterprise note {i}")
    org.add(round_, 1, "Sales", "EMEA", "Mid-Market", score=1, why="the lone mid-market rep's secret")
    org.add(round_, 12, "Sales", "AMER", "Mid-Market", score=3, why=lambda i: f"amer note {i}")
    org.data.commit()
    return org, round_


def test_across_slice_kinds_no_difference_isolates_one_rep(client, api_token, signed_in_client):
    org, round_ = cross_kind_org()
    headers = api_token(roles=READERS)
    staff = signed_in_client(roles=READERS)
    cards = read_cards(client, headers, round_.id)
    published = published_number_groups(cards)
    # Before issue 12 both EMEA (11) and Enterprise (10) were shown: 11 - 10 = 1.
    assert not {("region", "EMEA"), ("segment", "Enterprise")} <= published
    assert_cells_rule(org.members(None, None), [org.members(k, n) for k, n in published], 5, "numbers")
    # The leader still sees the whole round.
    overall = {q["key"]: q for q in cards[None]["questions"]}
    assert overall["score"]["n"] == 23 and overall["score"]["metrics"]["mean"] is not None

    # Comments: no set difference between any two published comment lists is
    # a group of fewer than 10 writers, and the lone rep's text is never isolated.
    lists = {}
    for kind in (None, *KINDS):
        names = [None] if kind is None else [s["name"] for s in cards[kind]["slices"]]
        for name in names:
            query = f"?slice={kind}:{name}" if kind else ""
            page = staff.get(f"/scorecards/rounds/{round_.id}/comments{query}")
            assert page.status_code == 200
            if "withheld-comments" in page.text:
                continue
            lists[(kind, name)] = frozenset(re.findall(r"<blockquote>([^<]*)</blockquote>", page.text))
    assert lists, "no comment list was read"
    for a in lists.values():
        for b in lists.values():
            assert len(a - b) == 0 or len(a - b) >= 10, sorted(a - b)


# -- 2. Row export plus a slice ------------------------------------------------------------------


def test_row_export_plus_a_team_slice_cannot_give_back_a_blanked_row(client, api_token):
    org = Org()
    round_ = org.round()
    org.add(round_, 12, "Sales / A", "EMEA", "Enterprise", score=4)
    org.add(round_, 1, "Sales / A", "APAC", "Enterprise", score=1)  # the one APAC rep, on team A
    org.add(round_, 10, "Sales / B", "EMEA", "Enterprise", score=3)
    org.add(round_, 10, "Sales / C", "AMER", "Enterprise", score=2)
    org.add(round_, 6, "Sales / D", "AMER", "Enterprise", score=5)
    org.data.commit()
    headers = api_token(roles=READERS)
    cards = read_cards(client, headers, round_.id)
    export = export_rows(client, headers, round_.id)
    assert len(export["rows"]) == 39
    # Every team the card publishes: its n minus the export rows showing that
    # team is nobody or at least 5 (before: team A 13, 12 rows kept "Sales / A").
    for slice_ in cards["team"]["slices"]:
        if slice_["n"] is None:
            continue
        shown = sum(1 for row in export["rows"] if row["team"] == slice_["name"])
        hidden = slice_["n"] - shown
        assert hidden == 0 or hidden >= 5 or shown == 0, (slice_["name"], slice_["n"], shown)
    # The rule, with the export's attribute classes as published groups too.
    groups = [org.members(k, n) for k, n in published_number_groups(cards)]
    by_attribute = defaultdict(set)
    answered = [pid for pid, person in org.people.items() if person["answered"]]
    rows_by_class = defaultdict(int)
    for row in export["rows"]:
        rows_by_class[(row["team"], row["region"], row["segment"])] += 1
    for (team, region, segment), count in rows_by_class.items():
        members = {pid for pid in answered
                   if (team is None or org.people[pid]["team"] == team)
                   and (region is None or org.people[pid]["region"] == region)
                   and (segment is None or org.people[pid]["segment"] == segment)}
        assert len(members) >= count
        for label, value in (("team", team), ("region", region), ("segment", segment)):
            if value is not None:
                by_attribute[(label, value)] |= {pid for pid in answered if org.people[pid][label] == value}
    assert_cells_rule(set(answered), groups + list(by_attribute.values()), 5, "export + card")


# -- 3. Comments in exports --------------------------------------------------------------------


def test_exports_carry_no_comments_of_a_group_under_the_comment_threshold(client, api_token, signed_in_client):
    org = Org()
    round_ = org.round()
    org.add(round_, 3, "Sales / A", "EMEA", "Enterprise", why=lambda i: f"team A secret {i}")
    org.add(round_, 22, "Sales / B", "EMEA", "Enterprise")
    org.data.commit()
    api = export_rows(client, api_token(roles=READERS), round_.id)
    staff = signed_in_client(roles=READERS)
    page = staff.get(f"/scorecards/rounds/{round_.id}/responses.json")
    assert page.status_code == 200
    for body in (api, page.get_json()):
        # 25 answered, so the round passed the old whole-round check; only 3 wrote.
        assert "why" not in body["columns"]
        assert "team A secret" not in repr(body["rows"])
    csv_page = staff.get(f"/scorecards/rounds/{round_.id}/responses.csv")
    assert csv_page.status_code == 200 and "team A secret" not in csv_page.text


# -- 4. Counts of withheld groups ---------------------------------------------------------------


def test_a_withheld_group_shows_only_its_name_and_withheld(client, api_token, signed_in_client):
    org = Org()
    round_ = org.round()
    org.add(round_, 12, "Sales / Big", "EMEA", "Enterprise")
    org.add(round_, 8, "Sales / Other", "EMEA", "Enterprise")
    org.add(round_, 1, "Sales / Solo", "EMEA", "Enterprise", answer=False)  # one person, who did not answer
    org.data.commit()
    headers = api_token(roles=READERS)
    card = client.get(f"/api/v1/rounds/{round_.id}/scorecard?slice=team", headers=headers).get_json()
    solo = next(s for s in card["slices"] if s["name"] == "Sales / Solo")
    assert solo["suppressed"] is True
    assert {key: value for key, value in solo.items() if value not in (None, [], False)} == {
        "kind": "team", "name": "Sales / Solo", "suppressed": True, "suppressed_reason": solo["suppressed_reason"],
    }
    participation = client.get(f"/api/v1/rounds/{round_.id}/participation", headers=headers)
    if participation.status_code == 200:
        entry = next(e for e in participation.get_json()["slices"]["team"] if e["name"] == "Sales / Solo")
        assert entry["invited"] is None and entry["responded"] is None and entry["rate"] is None
    page = signed_in_client(roles=READERS).get(f"/scorecards/rounds/{round_.id}")
    row = re.search(r'<th scope="row">Sales / Solo</th>(.*?)</tr>', page.text, re.S)
    assert row and "withheld" in row.group(1) and not re.search(r"\d", re.sub(r"<[^>]+>", "", row.group(1)))


# -- 5. Held rounds -------------------------------------------------------------------------


def test_a_held_round_shows_nothing_that_moves_with_answers(client, api_token, signed_in_client):
    org = Org(hold_until_close=True)
    round_ = org.round(status="open")
    org.add(round_, 12, "Sales", "EMEA", "Enterprise", answer=False)
    org.data.commit()
    headers = api_token(roles=READERS)
    staff = signed_in_client(roles=READERS)

    def everything():
        rounds = client.get(f"/api/v1/cadences/{org.data.cadence.id}/rounds", headers=headers).get_json()
        cadence_page = staff.get(f"/cadences/{org.data.cadence.id}").text
        home = staff.get("/home").text
        scorecards = staff.get(f"/scorecards/?cadence={org.data.cadence.id}").text
        return (rounds, _section(cadence_page, "<h2>Rounds</h2>", "</table>"),
                _section(home, "<main", "</main>"), _section(scorecards, "<tbody>", "</tbody>"))

    before = everything()
    assert before[0][0]["responded"] is None
    invitations = db.session.scalars(select_invitations(round_.id)).all()
    for count, invitation in enumerate(invitations[:7], start=1):
        from surveys.models import Answer, Response
        from surveys.scorecard import tallies

        response = Response(invitation_id=invitation.id, round_id=round_.id)
        response.answers.append(Answer(round_id=round_.id, team_id=invitation.team_id, region=invitation.region,
                                       segment=invitation.segment, question_key="score", value_num=5.0))
        invitation.responded_at = FIRST_OPEN + timedelta(hours=count)
        db.session.add(response)
        tallies.record_change(round_.id, (invitation.team_id, invitation.region, invitation.segment), frozenset(),
                              [], [("score", 5.0, None)])
        db.session.commit()
        assert everything() == before, f"something moved after answer {count}"
    # A nudge does not say how many have not answered either (judged on the real clock).
    now = datetime.now(timezone.utc)
    round_.opens_at, round_.closes_at = now - timedelta(hours=1), now + timedelta(days=3)
    db.session.commit()
    nudged = client.post(f"/api/v1/rounds/{round_.id}/nudge", headers=headers)
    assert nudged.status_code == 200 and nudged.get_json() == {"nudged": None}


def select_invitations(round_id):
    from sqlalchemy import select

    return select(Invitation).where(Invitation.round_id == round_id).order_by(Invitation.id)


def _section(html, start, end):
    """The part of a page between two markers, without CSRF tokens (they carry a timestamp)."""
    head = html.index(start)
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', html[head:html.index(end, head)])


# -- 6. A promise changed after it was made -----------------------------------------------------


def test_a_promise_cannot_be_loosened_once_invitations_exist(app, client, api_token):
    data = ScorecardData(confidentiality="confidential", min_group_size=5)
    data.version([{"key": "score", "type": "scale"}])
    people = [data.person(team="Sales", region="EMEA", segment="Enterprise") for _ in range(6)]
    data.cadence.created_at = datetime(2026, 1, 1, tzinfo=timezone.utc)  # before its first occurrence
    data.commit()
    opened = tick(datetime(2026, 1, 5, 9, 1, tzinfo=timezone.utc), enqueue=False)
    assert opened.opened, "the tick opened no round"
    round_ = db.session.scalar(db.select(Round).where(Round.cadence_id == data.cadence.id))
    headers = api_token(roles=READERS)
    set_id = data.question_set.id
    for loosening in ({"confidentiality": "attributed"}, {"min_group_size": 3}, {"comment_min_group_size": 6}):
        refused = client.patch(f"/api/v1/question-sets/{set_id}", json=loosening, headers=headers)
        assert refused.status_code == 422 and refused.mimetype == "application/problem+json", refused.text
        (field,) = loosening
        assert "only become stricter" in refused.get_json()["errors"][field]
    db.session.expire_all()
    stored = db.session.get(QuestionSet, set_id)
    assert (stored.confidentiality, stored.min_group_size, stored.comment_min_group_size) == ("confidential", 5, 10)
    # The round records what its invitations promised.
    assert round_.policy == {"confidentiality": "confidential", "min_group_size": 5,
                             "comment_min_group_size": 10, "hold_until_close": False}
    # Stricter is still allowed.
    assert client.patch(f"/api/v1/question-sets/{set_id}", json={"min_group_size": 6}, headers=headers).status_code == 200
    # The rep who opens the form later is told what they were promised.
    invitation = db.session.scalar(db.select(Invitation).where(Invitation.round_id == round_.id))
    form = client.get(f"/r/{invitation_token(invitation)}")
    assert form.status_code == 200 and "Confidential." in form.text and "Attributed." not in form.text
    assert len(people) == 6


def test_a_round_keeps_its_promise_even_if_the_set_was_loosened_behind_its_back(app, client, api_token):
    """Rounds sent before this rule existed (or a set changed in the database)
    are read under the policy the round recorded: no names appear."""
    org = Org()
    round_ = org.round()
    round_.policy = {"confidentiality": "confidential", "min_group_size": 5, "comment_min_group_size": 10,
                     "hold_until_close": False}
    org.add(round_, 12, "Sales", "EMEA", "Enterprise", why=lambda i: f"note {i}")
    org.data.question_set.confidentiality = "attributed"
    org.data.commit()
    headers = api_token(roles=READERS)
    card = client.get(f"/api/v1/rounds/{round_.id}/scorecard", headers=headers).get_json()
    assert card["confidentiality"] == "confidential" and card["non_responders"] is None
    export = export_rows(client, headers, round_.id)
    assert "name" not in export["columns"] and "email" not in export["columns"]


# -- Attributed sets and large orgs ---------------------------------------------------------------


def test_attributed_sets_are_unaffected(client, api_token):
    org = Org(confidentiality="attributed")
    round_ = org.round()
    org.add(round_, 1, "Sales / Solo", "APAC", "SMB", why="my own words")
    org.add(round_, 2, "Sales / Pair", "EMEA", "Enterprise", answer=False)
    org.data.commit()
    headers = api_token(roles=READERS)
    card = client.get(f"/api/v1/rounds/{round_.id}/scorecard?slice=team", headers=headers).get_json()
    assert all(not s["suppressed"] for s in card["slices"])
    solo = next(s for s in card["slices"] if s["name"] == "Sales / Solo")
    assert solo["n"] == 1 and solo["invited"] == 1
    assert len(card["non_responders"]) == 2
    export = export_rows(client, headers, round_.id)
    assert "name" in export["columns"] and export["rows"][0]["why"] == "my own words"
    rounds = client.get(f"/api/v1/cadences/{org.data.cadence.id}/rounds", headers=headers).get_json()
    assert (rounds[0]["invited"], rounds[0]["responded"]) == (3, 1)


def test_an_all_large_org_loses_nothing(client, api_token):
    org = Org()
    round_ = org.round()
    for team, region in (("Sales / North", "EMEA"), ("Sales / South", "AMER")):
        for segment in ("Enterprise", "SMB"):
            org.add(round_, 10, team, region, segment, score=lambda i: 1 + i % 5, why=lambda i: f"{team} {segment} {i}")
    org.data.commit()
    headers = api_token(roles=READERS)
    cards = read_cards(client, headers, round_.id)
    for kind in KINDS:
        assert cards[kind]["slices"] and all(not s["suppressed"] for s in cards[kind]["slices"]), kind
        for slice_ in cards[kind]["slices"]:
            assert slice_["n"] is not None and slice_["invited"] is not None
            assert all(not q["suppressed"] for q in slice_["questions"] if q["key"] == "score")
    export = export_rows(client, headers, round_.id)
    assert all(row["team"] and row["region"] and row["segment"] for row in export["rows"])
    assert "why" in export["columns"]
