"""Test data for scorecards, built directly through the models: a question set
with published versions, a cadence, rounds, invitations (with their team,
region and segment snapshot), responses and answers stored the way
`surveys.models` documents (one Answer row per value)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from cadence.models import Cadence, Invitation, Round
from surveys.org.models import Person, TEAM_PATH_SEPARATOR, Team
from surveys.extensions import db
from surveys.models import Answer, Question, QuestionSet, QuestionSetVersion, Response
from surveys.scorecard import tallies
from surveys.scorecard.trends import TREND_ROUNDS, trends

FIRST_OPEN = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


class ScorecardData:
    def __init__(self, confidentiality="attributed", min_group_size=5, hold_until_close=False):
        self.question_set = QuestionSet(
            name="Win/loss pulse",
            confidentiality=confidentiality,
            min_group_size=min_group_size,
            hold_until_close=hold_until_close,
        )
        db.session.add(self.question_set)
        db.session.flush()
        self.cadence = Cadence(
            name="Monthly pulse", question_set_id=self.question_set.id, rrule="FREQ=MONTHLY;BYDAY=1MO",
            starts_on=date(2026, 1, 1),
        )
        db.session.add(self.cadence)
        db.session.flush()
        self._versions = 0
        self._people = 0
        self._teams: dict[str, Team] = {}

    def version(self, questions) -> QuestionSetVersion:
        """A published version; each question is a dict: key, type, and optional prompt, settings."""
        self._versions += 1
        version = QuestionSetVersion(
            question_set_id=self.question_set.id, number=self._versions, status="published",
            published_at=FIRST_OPEN,
        )
        for position, spec in enumerate(questions):
            version.questions.append(
                Question(
                    position=position, key=spec["key"], type=spec["type"],
                    prompt=spec.get("prompt", spec["key"].replace("_", " ").capitalize() + "?"),
                    required=spec.get("required", True), settings=spec.get("settings", {}),
                )
            )
        db.session.add(version)
        db.session.flush()
        return version

    def team(self, path: str) -> Team:
        """The team at `path`, creating it and its ancestors."""
        if path in self._teams:
            return self._teams[path]
        parts = path.split(TEAM_PATH_SEPARATOR)
        parent = self.team(TEAM_PATH_SEPARATOR.join(parts[:-1])) if len(parts) > 1 else None
        team = Team(name=parts[-1], path=path, parent_id=parent.id if parent else None)
        db.session.add(team)
        db.session.flush()
        self._teams[path] = team
        return team

    def person(self, team=None, region=None, segment=None, name=None, email=None) -> Person:
        self._people += 1
        person = Person(
            email=email or f"rep{self._people}@example.com", name=name or f"Rep {self._people}",
            team_id=self.team(team).id if team else None, region=region, segment=segment, timezone="UTC",
        )
        person.set_roles(["rep"])
        db.session.add(person)
        db.session.flush()
        return person

    def round(self, period_key, version, months_after_first=0, status="closed") -> Round:
        opens_at = FIRST_OPEN + timedelta(days=31 * months_after_first)
        round_ = Round(
            cadence_id=self.cadence.id, period_key=period_key, question_set_version_id=version.id if version else None,
            status=status, scheduled_at=opens_at, opens_at=opens_at, closes_at=opens_at + timedelta(days=5),
        )
        db.session.add(round_)
        db.session.flush()
        return round_

    def invite(self, round_, person) -> Invitation:
        invitation = Invitation(
            round_id=round_.id, person_id=person.id, team_id=person.team_id, region=person.region,
            segment=person.segment, timezone=person.timezone, send_at=round_.opens_at,
        )
        db.session.add(invitation)
        db.session.flush()
        return invitation

    def respond(self, round_, person, answers: dict) -> Response:
        """Invite `person` and store their answers: numbers for scale/nps/number,
        True/False for yes_no, an option key, a list of keys for multi_choice (with
        ("other", text) for the other option), a string for text."""
        invitation = self.invite(round_, person)
        response = Response(invitation_id=invitation.id, round_id=round_.id)
        added = []
        for key, value in answers.items():
            for value_num, value_text, detail in _answer_rows(value):
                response.answers.append(
                    Answer(round_id=round_.id, team_id=invitation.team_id, region=invitation.region,
                           segment=invitation.segment, question_key=key, value_num=value_num, value_text=value_text,
                           detail=detail)
                )
                added.append((key, value_num, value_text))
        invitation.responded_at = round_.opens_at + timedelta(hours=1)
        db.session.add(response)
        db.session.flush()
        # As surveys.answers.store_response does, in the same transaction.
        tallies.record_change(round_.id, (invitation.team_id, invitation.region, invitation.segment),
                              tallies.text_keys_of(round_.version), [], added)
        return response

    def commit(self):
        db.session.commit()


def _answer_rows(value):
    if isinstance(value, bool):
        return [(1.0 if value else 0.0, None, None)]
    if isinstance(value, (int, float)):
        return [(float(value), None, None)]
    if isinstance(value, list):
        rows = []
        for item in value:
            if isinstance(item, tuple):
                rows.append((None, item[0], item[1]))
            else:
                rows.append((None, item, None))
        return rows
    return [(None, value, None)]


def trend(cadence: Cadence, question_key: str, last: int = TREND_ROUNDS, until: Round | None = None) -> list[dict]:
    """One question over the cadence's last `last` sent rounds, as `trends` gives it."""
    return trends(cadence, last, until, [question_key])[question_key]


def primary_rule_only(atoms, membership, candidates, threshold, base=(), also=()):
    """A publication planner without the cells rule: each group withheld only
    when it is itself under the threshold. Swapped in for surveys.disclosure's
    to show that the confidentiality checks can fail."""
    from surveys import disclosure

    withheld = {}
    for group in candidates:
        if sum(units for atom, units in atoms.items() if group in membership[atom]) < threshold:
            withheld[group] = disclosure.SMALL_GROUP
    return [group for group in candidates if group not in withheld], withheld
