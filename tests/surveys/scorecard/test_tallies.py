"""The scorecard's tallies (surveys.scorecard.tallies) hold exactly what a
recount of the answers says, after any mix of first answers, edits and
answers taken back; a drift is found, reported and repaired."""

import logging
import random
from datetime import timedelta

from sqlalchemy import func, select, update

from cadence.models import Invitation
from surveys.answers import store_response
from surveys.extensions import db
from surveys.models import Answer, AnswerTally, RespondentTally
from surveys.scorecard.cube import load_aggregates
from surveys.scorecard.finalized import finalize_scorecard
from surveys.scorecard.groups import ALL_KINDS, OVERALL, TeamTree
from surveys.scorecard.tallies import rebuild_tallies, tally_drift
from tests.builders.scorecards import FIRST_OPEN, ScorecardData

QUESTIONS = [
    {"key": "score", "type": "scale", "settings": {"scale_max": 5}},
    {"key": "nps", "type": "nps", "required": False},
    {"key": "lost", "type": "yes_no", "required": False},
    {"key": "why", "type": "single_choice", "required": False,
     "settings": {"options": [{"key": k, "label": k.title()} for k in ("price", "features", "timing")]}},
    {"key": "gaps", "type": "multi_choice", "required": False,
     "settings": {"allow_other": True, "options": [{"key": k, "label": k.title()} for k in ("sso", "api", "reports")]}},
    {"key": "deals", "type": "number", "required": False, "settings": {"min": -5, "max": 50}},
    {"key": "note", "type": "text", "required": False},
]
CELLS = [("Sales / EMEA / SMB", "EMEA", "SMB"), ("Sales / EMEA / Enterprise", "EMEA", "Enterprise"),
         ("Sales / NA / SMB", "NA", "SMB"), ("Sales / NA / SMB", "NA", None), (None, "APAC", "SMB"), (None, None, None)]


def random_answers(rng: random.Random) -> dict:
    """A response as store_response receives it: some questions left out,
    number answers that repeat (and a -0.0, which SQL takes for 0.0)."""
    answers = {"score": rng.randint(1, 5)}
    if rng.random() < 0.7:
        answers["nps"] = rng.randint(0, 10)
    if rng.random() < 0.7:
        answers["lost"] = rng.choice(["yes", "no"])
    if rng.random() < 0.7:
        answers["why"] = rng.choice(["price", "features", "timing"])
    if rng.random() < 0.7:
        answers["gaps"] = rng.sample(["sso", "api", "reports", "other"], rng.randint(1, 4))
        if "other" in answers["gaps"]:
            answers["gaps__other"] = rng.choice(["Audit log", "audit log", "SAML"])
    if rng.random() < 0.6:
        answers["deals"] = rng.choice([0.0, -0.0, 1.0, 2.5, 3.0, float(rng.randint(-5, 50))])
    if rng.random() < 0.5:
        answers["note"] = rng.choice(["Too pricey", "Needs SSO", "Lost to a rival on price"])
    return answers


def comparable(aggregates: dict) -> dict:
    """Aggregates as plain, ordered data (value rows sorted, zero counts left out)."""
    out = {}
    for (round_id, kind), sums in aggregates.items():
        out[(round_id, kind)] = {
            "participation": dict(sums.participation),
            "values": {(str(group), key): sorted((num, text, count) for num, text, count in rows if count)
                       for group, by_key in sums.value_counts.items() for key, rows in by_key.items()
                       if key != "note"},  # free text: a recount keeps its values, tallies only its respondents
            "respondents": {(str(group), key): count for group, by_key in sums.respondents.items()
                            for key, count in by_key.items() if count},
        }
    return out


def an_open_round(reps_per_cell=6):
    data = ScorecardData()
    version = data.version(QUESTIONS)
    round_ = data.round("2026-01", version, 0, status="open")
    invitations = [data.invite(round_, data.person(team=team, region=region, segment=segment))
                   for team, region, segment in CELLS for _ in range(reps_per_cell)]
    data.commit()
    return round_, version, invitations


def assert_tallies_equal_a_recount(round_):
    assert tally_drift(round_) == []
    tree = TeamTree.for_round(round_)
    tallied = load_aggregates([round_], ALL_KINDS, tree)
    recounted = load_aggregates([round_], ALL_KINDS, tree, recount=True)
    assert comparable(tallied) == comparable(recounted)
    return tallied


def test_tallies_equal_a_recount_after_random_answers_edits_and_answers_taken_back(app):
    round_, version, invitations = an_open_round()
    for seed in range(4):
        rng = random.Random(seed)
        for step in range(40):
            invitation = rng.choice(invitations)
            db.session.refresh(invitation)
            store_response(invitation, version, random_answers(rng), FIRST_OPEN + timedelta(minutes=seed * 100 + step))
        assert_tallies_equal_a_recount(round_)
    edited = db.session.scalar(select(func.count()).select_from(Invitation).where(
        Invitation.round_id == round_.id, Invitation.responded_at.is_not(None)))
    assert 0 < edited < 160  # some reps changed their answers (160 submissions, fewer responses)

    # An edit that takes answers back: only the required question stays.
    for invitation in invitations:
        db.session.refresh(invitation)
        if invitation.responded_at is not None:
            store_response(invitation, version, {"score": 3}, FIRST_OPEN + timedelta(days=1))
    tallied = assert_tallies_equal_a_recount(round_)
    overall = tallied[(round_.id, None)]
    assert overall.respondents[OVERALL] == {"score": edited}
    assert overall.value_counts[OVERALL] == {"score": [(3.0, None, edited)]}


def test_the_numbers_are_counted_once_per_slot_whatever_the_order_of_edits(app):
    """The same final answers reached by different paths leave the same tallies."""
    round_, version, invitations = an_open_round(reps_per_cell=2)
    final = {invitation.id: random_answers(random.Random(invitation.id)) for invitation in invitations}
    for seed, invitation in enumerate(invitations):
        for detour in range(seed % 3):
            store_response(invitation, version, random_answers(random.Random(1000 + seed * 10 + detour)),
                           FIRST_OPEN + timedelta(minutes=detour))
            db.session.refresh(invitation)
        store_response(invitation, version, final[invitation.id], FIRST_OPEN + timedelta(hours=1))
    stored = {name: sorted(db.session.execute(select(table.slot, getattr(table, counted))
                                              .where(getattr(table, counted) != 0)).all())
              for name, table, counted in (("values", AnswerTally, "answers"),
                                           ("respondents", RespondentTally, "respondents"))}
    rebuild_tallies(round_)
    db.session.commit()
    rebuilt = {name: sorted(db.session.execute(select(table.slot, getattr(table, counted))).all())
               for name, table, counted in (("values", AnswerTally, "answers"),
                                            ("respondents", RespondentTally, "respondents"))}
    assert stored == rebuilt and rebuilt["values"]


def test_a_drifted_tally_is_found_then_recounted_before_the_round_is_finalized(app, caplog):
    round_, version, invitations = an_open_round(reps_per_cell=1)
    for invitation in invitations:
        store_response(invitation, version, {"score": 4, "why": "price"}, FIRST_OPEN)
    # Something outside the submission path changes the answers (a manual fix in the database).
    db.session.execute(update(Answer).where(Answer.question_key == "why").values(value_text="timing"))
    db.session.commit()
    drift = tally_drift(round_)
    assert len(drift) == 2 * len({(team, region, segment) for team, region, segment in CELLS})
    assert any('"price"' in line and "tallied 1, recounted 0" in line for line in drift)

    round_.status = "closed"
    db.session.commit()
    with caplog.at_level(logging.ERROR, logger="surveys.scorecard.finalized"):
        snapshot = finalize_scorecard(round_)
    assert "tally rows differ from a recount" in caplog.text
    assert tally_drift(round_) == []
    why = next(q for q in snapshot.card("overall")["questions"] if q["key"] == "why")
    assert why["n"] == len(invitations) and why["metrics"]["option_pct"]["timing"] == 100.0


def test_check_tallies_reports_a_drift_with_exit_1_and_repairs_it(app):
    cli_runner = app.test_cli_runner()
    round_, version, invitations = an_open_round(reps_per_cell=1)
    for invitation in invitations[:3]:
        store_response(invitation, version, {"score": 2}, FIRST_OPEN)
    assert cli_runner.invoke(args=["scorecard", "check-tallies"]).exit_code == 0
    db.session.execute(update(AnswerTally).where(AnswerTally.question_key == "score").values(answers=AnswerTally.answers + 1))
    db.session.commit()

    checked = cli_runner.invoke(args=["scorecard", "check-tallies", "--round", str(round_.id)])
    assert checked.exit_code == 1 and "tallied 2, recounted 1" in checked.output
    assert "1 rounds checked, 1 differed" in checked.output
    repaired = cli_runner.invoke(args=["scorecard", "check-tallies", "--repair"])
    assert repaired.exit_code == 0 and "recounted" in repaired.output
    assert tally_drift(round_) == []
    missing = cli_runner.invoke(args=["scorecard", "check-tallies", "--round", "999999"])
    assert missing.exit_code != 0 and "no round 999999" in missing.output
