"""Hypothesis fuzz of the two doors that take the most untrusted input: the rep
form (anyone holding a link) and the people import (a file from a CRM export).

Whatever is sent: no server error, bad input stores nothing and changes
nothing, good input is stored within the question's rules, and whatever is
echoed back is escaped.
"""

import csv
import io
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cadence.links import invitation_token
from surveys.org.models import Person
from surveys.org.people import export_people_csv, import_people
from surveys.extensions import db
from surveys.models import Answer, Question, QuestionSetVersion, Response
from tests.conftest import csrf_token_from
from tests.builders.scorecards import FIRST_OPEN, ScorecardData

FUZZ_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

# Text that has broken forms before: markup, formulas, control characters,
# huge numbers, unicode, the empty string.
NASTY_TEXT = st.one_of(
    st.sampled_from(["", " ", "<script>alert(1)</script>", "=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "\t=1",
                     "1e309", "NaN", "-0", "0x10", "9" * 40, "Zoë Ångström", "\u202eevil", "a\x00b", "yes ", "YES"]),
    st.text(max_size=40),
)

OPTION_KEYS = ["acme", "globex", "other"]
QUESTIONS = [
    {"key": "confidence", "type": "scale", "settings": {"scale_max": 5}},
    {"key": "recommend", "type": "nps"},
    {"key": "lost_deal", "type": "yes_no"},
    {"key": "lost_to", "type": "single_choice", "show_if_key": "lost_deal", "show_if_value": "yes",
     "settings": {"options": [{"key": "acme", "label": "Acme"}, {"key": "globex", "label": "Globex"}]}},
    {"key": "gaps", "type": "multi_choice", "required": False,
     "settings": {"options": [{"key": "sso", "label": "SSO"}, {"key": "api", "label": "API"}], "allow_other": True}},
    {"key": "deals", "type": "number", "settings": {"min": 0, "max": 50, "unit": "deals"}},
    {"key": "notes", "type": "text", "required": False, "settings": {"max_length": 200}},
]
VALID_VALUES = {
    "confidence": [str(v) for v in range(1, 6)],
    "recommend": [str(v) for v in range(0, 11)],
    "lost_deal": ["yes", "no"],
    "lost_to": ["acme", "globex"],
    "gaps": ["sso", "api", "other"],
    "deals": ["0", "7", "50", "12.5"],
    "notes": ["fine", "x" * 200],
}


ALL_KEYS = [question["key"] for question in QUESTIONS] + ["gaps__other", "not_a_question"]


@st.composite
def submissions(draw):
    """A valid submission with a few fields broken, dropped or repeated: both
    sides of validation get exercised, not only the refusals."""
    submission = {key: [draw(st.sampled_from(values))] for key, values in VALID_VALUES.items()}
    if draw(st.booleans()):
        submission["gaps"] = draw(st.lists(st.sampled_from(VALID_VALUES["gaps"]), min_size=1, max_size=3, unique=True))
        submission["gaps__other"] = [draw(NASTY_TEXT)]
    for key in draw(st.sets(st.sampled_from(ALL_KEYS), max_size=3)):
        damage = draw(st.sampled_from(["replace", "drop", "repeat"]))
        if damage == "drop":
            submission.pop(key, None)
        elif damage == "repeat":
            submission[key] = submission.get(key, []) + draw(st.lists(NASTY_TEXT, min_size=1, max_size=2))
        else:
            submission[key] = [draw(NASTY_TEXT)]
    return submission


def stored_answers(invitation_id):
    return sorted(
        db.session.execute(
            select(Answer.question_key, Answer.value_num, Answer.value_text, Answer.detail)
            .join(Response, Response.id == Answer.response_id)
            .where(Response.invitation_id == invitation_id)
        ).all(),
        key=repr,
    )


def check_stored_answers_follow_the_rules(rows):
    by_key = {}
    for key, number, text, detail in rows:
        by_key.setdefault(key, []).append((number, text, detail))
    assert {"confidence", "recommend", "lost_deal", "deals"} <= set(by_key), by_key
    assert 1 <= by_key["confidence"][0][0] <= 5
    assert 0 <= by_key["recommend"][0][0] <= 10
    assert by_key["lost_deal"][0][0] in (0, 1)
    assert 0 <= by_key["deals"][0][0] <= 50
    if by_key["lost_deal"][0][0] == 1:
        assert by_key["lost_to"][0][1] in ("acme", "globex")
    else:
        assert "lost_to" not in by_key  # hidden by show-if: never stored
    for _number, text, _detail in by_key.get("gaps", []):
        assert text in ("sso", "api", "other")
    for _number, text, _detail in by_key.get("notes", []):
        assert len(text) <= 200
    assert set(by_key) <= {question["key"] for question in QUESTIONS}


def published_version(data, questions) -> QuestionSetVersion:
    """Like ScorecardData.version, with show-if conditions."""
    version = QuestionSetVersion(question_set_id=data.question_set.id, number=1, status="published",
                                 published_at=FIRST_OPEN)
    for position, spec in enumerate(questions):
        version.questions.append(Question(
            position=position, key=spec["key"], type=spec["type"], prompt=spec["key"].replace("_", " ").capitalize() + "?",
            required=spec.get("required", True), settings=spec.get("settings", {}),
            show_if_key=spec.get("show_if_key"), show_if_value=spec.get("show_if_value"),
        ))
    db.session.add(version)
    db.session.flush()
    return version


def test_fuzzed_rep_form_posts_store_valid_answers_or_nothing(app, client):
    data = ScorecardData()
    version = published_version(data, QUESTIONS)
    round_ = data.round("2026-01", version, status="open")
    invitation = data.invite(round_, data.person())
    data.commit()
    path = f"/r/{invitation_token(invitation)}"
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = csrf_token_from(page.text)
    outcomes = set()

    @FUZZ_SETTINGS
    @given(submission=submissions())
    def post(submission):
        before = stored_answers(invitation.id)
        response = client.post(path, data={"csrf_token": token, **submission})
        db.session.expire_all()
        after = stored_answers(invitation.id)
        outcomes.add(response.status_code)
        assert response.status_code in (303, 400, 422), (response.status_code, submission)
        if response.status_code == 303:
            check_stored_answers_follow_the_rules(after)
        else:
            assert after == before, submission  # bad input changes nothing
            assert "<script>alert(1)</script>" not in response.text

    post()
    # The fuzz reached both sides: some posts were stored, some refused.
    assert 303 in outcomes and outcomes & {400, 422}


PEOPLE_COLUMNS = ["email", "name", "roles", "team", "region", "segment", "manager_email", "timezone"]
emails = st.one_of(
    st.sampled_from(["ana@example.com", "ANA@example.com", "ben@example.com", "cai@example.com", "", "not-an-email",
                     "a@b", "<x>@example.com", "=1@example.com"]),
    st.builds(lambda user: f"{user}@example.com", st.text(alphabet=string.ascii_lowercase + ".-_+", min_size=1, max_size=12)),
)
people_rows = st.fixed_dictionaries({
    "email": emails,
    "name": NASTY_TEXT,
    "roles": st.one_of(st.sampled_from(["rep", "rep;pm", "leader", "admin;rep", "", "superuser", "REP", "rep;;pm"]), NASTY_TEXT),
    "team": st.sampled_from(["Sales / EMEA", "Sales / NA / SMB", "Sales//NA", "", " / ", "=Team"]),
    "region": NASTY_TEXT,
    "segment": NASTY_TEXT,
    "manager_email": st.sampled_from(["", "ana@example.com", "nobody@example.com", "bad"]),
    "timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Mars/Olympus_Mons", "", "utc"]),
})


@st.composite
def people_files(draw):
    columns = draw(st.permutations(PEOPLE_COLUMNS))
    header = [draw(st.sampled_from([name, name.upper(), name.title()])) for name in columns]
    rows = draw(st.lists(people_rows, min_size=1, max_size=8))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow(header)
    for row in rows:
        writer.writerow([row[name] for name in columns])
    prefix = draw(st.sampled_from(["", "\ufeff"]))
    return (prefix + out.getvalue()).encode("utf-8"), len(rows)


def test_fuzzed_people_files_import_whole_or_not_at_all(app):
    @FUZZ_SETTINGS
    @given(upload=people_files())
    def run(upload):
        content, _row_count = upload
        # Bad rows are reported by line in the file; a quoted cell may span lines.
        physical_lines = len(content.decode("utf-8-sig").splitlines())
        before = db.session.scalar(select(func.count(Person.id)))
        report = import_people(content)
        after = db.session.scalar(select(func.count(Person.id)))
        if report.errors:
            assert not report.imported and after == before  # nothing imported by default
            assert all(1 <= line <= physical_lines for line in report.bad_lines), report.errors
            assert all(reason.strip() for _line, reason in report.errors)
        else:
            assert report.imported and after == before + report.created
        for row in csv.reader(io.StringIO(export_people_csv())):
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row

    run()
