"""The adversary of issue 12, generated: for each org (a team tree of depth 1
to 3, regions and segments crossing it, groups of 1 to 15 people, random
answers and comments, people moved between rounds, a team re-parented after
the first round closed), read everything a leader can read about a
confidential round through HTTP (every `?slice=` of the scorecard API, every
comment filter, both exports, participation, the cadence's round list, the
digest email) and then, knowing the memberships the reader does not:

- rule 1: every non-empty cell of the partition cut by the groups any read
  published numbers for holds at least the minimum group size (per question,
  over its answerers too), and a linear solver (SciPy's least squares and
  null space) given every published sum cannot determine any single
  respondent's answer;
- rule 2: the same for comment lists, over writers, at the comment threshold;
- rule 3: the same for participation, over invitees; a withheld group shows
  only its name and that it is withheld;
- rule 4: a round held until close shows no count that moves with answers;
- the same round read after the re-organisation publishes the same groups.

Seeded (hypothesis derandomized, no example database) and bounded in time.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import linalg

from sqlalchemy import text

from surveys.org.models import Person, Team
from surveys.digest import on_round_closed
from surveys.extensions import db
from surveys.caches import forget_all as forget_cached_rows
from tests.builders.scorecards import ScorecardData, primary_rule_only

KINDS = ("team", "region", "segment")
READERS = ("pm", "leader", "admin")
REGIONS = ["EMEA", "AMER", "APAC", "LATAM"]
SEGMENTS = ["Enterprise", "Mid-Market", "SMB"]
QUESTIONS = [
    {"key": "score", "type": "scale"},
    {"key": "won", "type": "yes_no", "required": False},
    {"key": "why", "type": "text", "required": False},
]
# Each org costs about 60 HTTP reads (0.3-0.5 s on a shared two-core machine):
# 120 keep the run under a minute; CANARY_ADVERSARY_EXAMPLES=1000 searches deeper.
EXAMPLES = int(os.environ.get("CANARY_ADVERSARY_EXAMPLES", "120"))


# -- The generated org ------------------------------------------------------------------------


class World:
    """A generated org and what the test knows that a reader does not."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.k = rng.choice([3, 4, 5])
        self.c = self.k + rng.choice([0, 2, 5])
        self.held = rng.random() < 0.25
        self.data = ScorecardData(confidentiality="confidential", min_group_size=self.k,
                                  hold_until_close=self.held)
        self.data.question_set.comment_min_group_size = self.c
        self.version = self.data.version(QUESTIONS)
        regions = rng.sample(REGIONS, rng.randint(2, 4))
        segments = rng.sample(SEGMENTS, rng.randint(2, 3))
        depth = rng.randint(1, 3)
        paths = ["Sales"]
        frontier = ["Sales"]
        for _level in range(1, depth):
            frontier = [f"{parent} / T{len(paths) + i}" for parent in frontier for i in range(rng.randint(1, 3))]
            paths += frontier
        self.people = []  # (person, [slice per round])
        for path in paths:
            for _ in range(rng.randint(1, 15) if path != "Sales" or depth == 1 else rng.randint(0, 3)):
                person = self.data.person(team=path, region=rng.choice(regions), segment=rng.choice(segments))
                self.people.append(person)
        self.paths = paths
        self.rounds = []
        self.truth = {}  # round id -> {person id: {"team": path, "region", "segment", "answered", answers...}}

    def run_round(self, key, months, status):
        round_ = self.data.round(key, self.version, months, status=status)
        truth = {}
        for person in self.people:
            team = db.session.get(Team, person.team_id).path
            entry = {"team_id": person.team_id, "team": team, "region": person.region, "segment": person.segment,
                     "answered": False}
            if self.rng.random() < 0.75:
                answers = {"score": self.rng.randint(1, 5)}
                if self.rng.random() < 0.6:
                    answers["won"] = self.rng.random() < 0.5
                if self.rng.random() < 0.6:
                    answers["why"] = f"c{round_.id}-{person.id}-{self.rng.randrange(10**6)}"
                self.data.respond(round_, person, answers)
                entry.update(answered=True, **answers)
            else:
                self.data.invite(round_, person)
            truth[person.id] = entry
        self.data.commit()
        self.rounds.append(round_)
        self.truth[round_.id] = truth
        return round_

    def move_people(self):
        """Between rounds some people change team, region or segment."""
        teams = {path: self.data.team(path) for path in self.paths}
        for person in self.people:
            if self.rng.random() < 0.2:
                person.team_id = teams[self.rng.choice(self.paths)].id
            if self.rng.random() < 0.1:
                person.region = self.rng.choice(REGIONS)
        self.data.commit()

    def reparent(self):
        """A team with a grandparent moves under its grandparent (paths follow)."""
        teams = db.session.scalars(db.select(Team)).all()
        by_id = {team.id: team for team in teams}
        movable = [t for t in teams if t.parent_id and by_id[t.parent_id].parent_id]
        if not movable:
            return {}
        moved = self.rng.choice(movable)
        new_parent = by_id[by_id[moved.parent_id].parent_id]
        renames = {}
        old_prefix, new_prefix = moved.path, f"{new_parent.path} / {moved.name}-moved"
        moved.parent_id = new_parent.id
        for team in teams:
            if team.path == old_prefix or team.path.startswith(old_prefix + " / "):
                renames[team.path] = new_prefix + team.path[len(old_prefix):]
        for team in teams:
            if team.path in renames:
                team.path = renames[team.path]
        db.session.commit()
        return renames


# -- Reading like a leader ---------------------------------------------------------------------


def read_round(client, headers, staff, round_id, cadence_id):
    """Everything a leader can read about one round."""
    cards = {kind: client.get(f"/api/v1/rounds/{round_id}/scorecard" + (f"?slice={kind}" if kind else ""),
                              headers=headers).get_json() for kind in (None, *KINDS)}
    exported = client.get(f"/api/v1/rounds/{round_id}/responses", headers=headers)
    page_card = staff.get(f"/scorecards/rounds/{round_id}/scorecard.json").get_json()
    comments = {}
    choices = [(None, None)] + [(kind, s["name"]) for kind in KINDS for s in cards[kind]["slices"]]
    for kind, name in choices:
        query = f"?question=why&slice={kind}:{name}" if kind else "?question=why"
        page = staff.get(f"/scorecards/rounds/{round_id}/comments{query}")
        assert page.status_code == 200
        if "withheld-comments" not in page.text:
            comments[(kind, name)] = re.findall(r"<blockquote>([^<]*)</blockquote>", page.text)
    rounds = client.get(f"/api/v1/cadences/{cadence_id}/rounds", headers=headers).get_json()
    return {
        "cards": cards,
        "page_card": page_card,
        "export": exported.get_json() if exported.status_code == 200 else None,
        "comments": comments,
        "round_list": next(r for r in rounds if r["id"] == round_id),
    }


def _strip(value):
    """A card without what differs between two reads of the same publication."""
    return json.loads(json.dumps(value))


# -- The rules, checked knowing the memberships ---------------------------------------------------------


def member(truth_entry, kind, name):
    if kind is None:
        return True
    if kind == "team":
        return truth_entry["team"] == name or truth_entry["team"].startswith(name + " / ")
    return truth_entry[kind] == name


def cells(universe, groups):
    signature = defaultdict(set)
    for unit in universe:
        signature[tuple(unit in group for group in groups)].add(unit)
    return [cell for cell in signature.values() if cell]


def assert_cells(universe, groups, threshold, what):
    """Every non-empty cell cut by the published groups (the people in none of
    them included) holds at least `threshold`; vacuous when nothing is published."""
    if not [group for group in groups if group]:
        return
    small = sorted(len(cell) for cell in cells(universe, groups) if len(cell) < threshold)
    assert not small, f"{what}: cells of {small} under {threshold}"


def solver_recovers(respondents, groups, sums, values):
    """Least squares over every published sum, then which unknowns the
    system fixes (a row of the null space that is all zero): any such
    respondent's answer is recovered; returns those it got right."""
    if not groups:
        return []
    index = {pid: i for i, pid in enumerate(respondents)}
    matrix = np.zeros((len(groups), len(respondents)))
    for row, group in enumerate(groups):
        for pid in group:
            matrix[row, index[pid]] = 1.0
    solution, *_ = linalg.lstsq(matrix, np.array(sums, dtype=float))
    null = linalg.null_space(matrix)
    fixed = [pid for pid, i in index.items() if null.shape[1] == 0 or np.allclose(null[i], 0.0, atol=1e-9)]
    return [pid for pid in fixed if abs(solution[index[pid]] - values[pid]) < 1e-6]


def check_round(world, read, truth, names_now):
    """Rules 1-4 on one read of one round. `names_now` maps team names as the
    read shows them to the truth's names (identity unless re-organised)."""
    k, c = world.k, world.c
    cards = read["cards"]
    respondents = [pid for pid, e in truth.items() if e["answered"]]
    invitees = list(truth)
    assert _strip(read["page_card"]) == _strip(cards[None])  # the page export is the API card

    def group(kind, name, who):
        name = names_now.get(name, name) if kind == "team" else name
        return frozenset(pid for pid in who if member(truth[pid], kind, name))

    held = cards[None]["held_until_close"]
    number_groups, participation_groups = [], []
    per_question = defaultdict(list)  # key -> [(group over answerers, entry)]
    for kind in (None, *KINDS):
        card = cards[kind]
        if kind is None:
            entries = [(None, None, card["questions"], card["response_rate"])]
        else:
            entries = [(kind, s["name"], s["questions"], s) for s in card["slices"]]
            for s in card["slices"]:
                if s["suppressed"] and s["suppressed_reason"] != "held_until_close":
                    # rule 3: a withheld group shows its name and that it is withheld, nothing else
                    assert s["n"] is None and s["invited"] is None and s["rate"] is None and s["questions"] == []
        for kind_, name, questions, counts in entries:
            if counts.get("invited") is not None or counts.get("responded") is not None:
                participation_groups.append(group(kind_, name, invitees))
            shown_n = counts.get("n") if kind_ else counts.get("responded")
            if shown_n is not None:
                number_groups.append(group(kind_, name, respondents))
                assert shown_n == len(number_groups[-1])
            for entry in questions:
                if entry["n"] is not None:
                    answerers = [pid for pid in respondents if entry["key"] in truth[pid]]
                    per_question[entry["key"]].append((group(kind_, name, answerers), entry))
    for kind, entries in cards[None]["participation"]["slices"].items():
        for entry in entries:
            if entry.get("withheld"):
                assert entry["invited"] is None and entry["responded"] is None and entry["rate"] is None
            elif entry["invited"] is not None:
                participation_groups.append(group(kind, entry["name"], invitees))
    listed = read["round_list"]
    if listed["invited"] is not None:
        participation_groups.append(frozenset(invitees))
    if listed["responded"] is not None:
        number_groups.append(frozenset(respondents))

    # Rule 4: while held, nothing that moves with answers.
    if held:
        assert cards[None]["response_rate"]["responded"] is None and listed["responded"] is None
        assert all(s["n"] is None for kind in KINDS for s in cards[kind]["slices"])
        assert not read["comments"] and read["export"] is None
        assert all(e["n"] is None for e in cards[None]["questions"])
        return

    # Exported rows: their attribute classes are published groups too.
    export_groups = []
    export = read["export"]
    if export is not None:
        assert "name" not in export["columns"] and len(export["rows"]) == len(respondents)
        for attribute in KINDS:
            for value in {row[attribute] for row in export["rows"]} - {None}:
                if attribute == "team":
                    own = names_now.get(value, value)
                    export_groups.append(frozenset(pid for pid in respondents if truth[pid]["team"] == own))
                else:
                    export_groups.append(group(attribute, value, respondents))

    # Rule 1 (cells, and the solver on the score sums).
    assert_cells(respondents, number_groups + export_groups, k, "respondents")
    for key, groups in per_question.items():
        answerers = [pid for pid in respondents if key in truth[pid]]
        # (An exported row is one respondent's whole answer vector, anonymous
        # within its attribute class: the classes are checked over respondents
        # above, where a row could be placed.)
        assert_cells(answerers, [g for g, _ in groups], k, key)
    score_groups = [(g, e) for g, e in per_question.get("score", []) if e["metrics"]]
    sums = [e["metrics"]["mean"] * e["n"] for _, e in score_groups]
    scorers = [pid for pid in respondents if "score" in truth[pid]]
    recovered = solver_recovers(scorers, [g for g, _ in score_groups] + [g & frozenset(scorers) for g in export_groups
                                                                         if len(g & frozenset(scorers)) == 0],
                                sums, {pid: truth[pid]["score"] for pid in scorers})
    assert not recovered, f"the solver recovered the score of {recovered}"
    # Rule 3.
    assert_cells(invitees, participation_groups, k, "invitees")
    # Rule 2: comment lists, and the export's text column, over writers.
    writers = [pid for pid in respondents if "why" in truth[pid]]
    comment_groups = []
    for (kind, name), texts in read["comments"].items():
        members_ = group(kind, name, writers)
        assert sorted(texts) == sorted(truth[pid]["why"] for pid in members_)
        comment_groups.append(members_)
    if export is not None and "why" in export["columns"]:
        comment_groups += [g & frozenset(writers) for g in export_groups]
        comment_groups.append(frozenset(writers))
    assert_cells(writers, comment_groups, c, "writers")


# -- The property -------------------------------------------------------------------------------


@pytest.fixture
def readers(app, client, api_token, signed_in_client):
    headers = api_token(roles=READERS)
    staff = signed_in_client(roles=READERS)
    ids = db.session.scalars(db.select(Person.id)).all()
    return client, headers, staff, ids


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_no_reader_can_single_out_a_rep(app, readers, smtp, seed):
    adversary(readers, smtp, seed)


def test_the_adversary_catches_a_planner_without_the_cells_rule(app, readers, smtp, monkeypatch):
    """The checks can fail: with only the primary rule (each group on its own
    at least the minimum), some generated org is caught."""
    from surveys import disclosure

    monkeypatch.setattr(disclosure, "plan_groups", primary_rule_only)
    caught = 0
    for seed in range(12):
        try:
            adversary(readers, smtp, seed)
        except AssertionError:
            caught += 1
    assert caught > 0


def adversary(readers, smtp, seed):
    client, headers, staff, readers_ids = readers
    world = World(random.Random(seed))
    try:
        first = world.run_round("2026-01", 0, "closed")
        on_round_closed(first.id)  # finalizes the card and mails the digest
        before = read_round(client, headers, staff, first.id, world.data.cadence.id)
        check_round(world, before, world.truth[first.id], {})
        renames = world.reparent()
        world.move_people()
        second = world.run_round("2026-02", 1, "open" if world.held else "closed")
        after = read_round(client, headers, staff, first.id, world.data.cadence.id)
        # The closed round, read after the re-organisation, publishes what it did.
        assert after["cards"] == before["cards"] and after["comments"] == before["comments"]
        if before["export"] is not None:
            back = {new: old for old, new in renames.items()}
            assert sorted(map(repr, ({**r, "team": back.get(r["team"], r["team"])} for r in after["export"]["rows"]))) \
                == sorted(map(repr, before["export"]["rows"]))
        read = read_round(client, headers, staff, second.id, world.data.cadence.id)
        check_round(world, read, world.truth[second.id], {})
        # What round 2's cards say about round 1 is what round 1 published.
        published_before = {json.dumps(e["metrics"], sort_keys=True) for kind in (None, *KINDS)
                            for entries in ([before["cards"][kind]["questions"]] if kind is None else
                                            [s["questions"] for s in before["cards"][kind]["slices"]])
                            for e in entries if e["metrics"]}
        for kind in (None, *KINDS):
            card = read["cards"][kind]
            entries = card["questions"] + [e for s in card["slices"] for e in s["questions"]]
            for entry in entries:
                if entry["previous"]:
                    assert json.dumps(entry["previous"], sort_keys=True) in published_before
        # The digest says nothing the overall card withheld.
        for message in smtp.messages:
            text = message.get_body(preferencelist=("plain",)).get_content()
            rate = before["cards"][None]["response_rate"]
            if rate["responded"] is None:
                assert "answered (" not in text
            else:
                assert f"{rate['responded']} of {rate['invited']} answered" in text
            assert not any(truth.get("why", "") and truth["why"] in text
                           for truth in world.truth[first.id].values())
    finally:
        smtp.messages.clear()
        reset_org(keep=readers_ids)


def reset_org(keep):
    """Empty every table but the readers' own rows (their sign-in, session and token
    stay valid across examples; signing in again each time would dominate)."""
    forget_cached_rows()
    kept = {"people": "id", "person_roles": "person_id", "api_tokens": "person_id", "staff_sessions": "person_id"}
    ids = ", ".join(str(int(i)) for i in keep)
    for table in reversed(db.metadata.sorted_tables):
        if table.name in kept:
            db.session.execute(text(f'DELETE FROM "{table.name}" WHERE {kept[table.name]} NOT IN ({ids})'))
        else:
            db.session.execute(text(f'DELETE FROM "{table.name}"'))
    db.session.commit()
