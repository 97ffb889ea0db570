"""Question sets: validation of every type, the service (drafts, publishing,
immutability, confidentiality), and the JSON API."""

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cadence.models import Cadence, Invitation, Round
from surveys.extensions import db
from surveys.models import (
    Answer,
    PublishedVersionError,
    Question,
    QuestionSet,
    QuestionSetVersion,
    Response,
)
from surveys.questions.drafts import (
    add_question,
    create_question_set,
    publish,
    remove_question,
    replace_draft_questions,
    update_settings,
    version_for_round,
)
from surveys.questions.rules import KEY_PATTERN, NothingToPublish, QuestionSetInvalid
from surveys.questions.shapes import question_set_to_dict, question_to_dict
from surveys.questions.validation import reserved_keys, validate_question, validate_question_set

CHOICES = [{"key": "price", "label": "Price"}, {"key": "features", "label": "Features"}]

GOOD = {
    "scale": {"key": "win_confidence", "type": "scale", "prompt": "How confident are you?"},
    "nps": {"key": "recommend", "type": "nps", "prompt": "Would customers recommend us?"},
    "single_choice": {"key": "main_reason", "type": "single_choice", "prompt": "Main reason?", "options": CHOICES},
    "multi_choice": {"key": "reasons", "type": "multi_choice", "prompt": "Reasons?", "options": CHOICES},
    "number": {"key": "deals_lost", "type": "number", "prompt": "Deals lost?"},
    "yes_no": {"key": "lost_deal", "type": "yes_no", "prompt": "Did you lose a deal?"},
    "text": {"key": "anything_else", "type": "text", "prompt": "Anything else?"},
}


def question(kind, **changes):
    return {**GOOD[kind], **changes}


def errors_of(data, earlier=()):
    return validate_question(data, earlier)[1]


# -- Validating one question ----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_a_minimal_question_of_every_type_is_valid(kind):
    kwargs, errors = validate_question(GOOD[kind], [])
    assert errors == {}
    assert kwargs["key"] == GOOD[kind]["key"]
    assert kwargs["type"] == kind
    assert kwargs["required"] is True
    assert kwargs["help"] == ""


def test_defaults_are_filled_in_per_type():
    assert validate_question(GOOD["scale"])[0]["settings"] == {
        "scale_max": 5, "favorable_min": 4, "low_label": None, "high_label": None, "higher_is_better": True,
        "pinned": False,
    }
    assert validate_question(GOOD["text"])[0]["settings"] == {"max_length": 2000}
    assert validate_question(GOOD["multi_choice"])[0]["settings"]["allow_other"] is False
    assert validate_question(GOOD["number"])[0]["settings"] == {
        "min": None, "max": None, "unit": None, "whole_numbers": False, "higher_is_better": True, "pinned": False,
    }
    assert validate_question(GOOD["yes_no"])[0]["settings"] == {"higher_is_better": True, "pinned": False}


@given(scale_max=st.integers(3, 10))
def test_scale_favourable_threshold_defaults_to_the_top_two_boxes(scale_max):
    settings_ = validate_question(question("scale", scale_max=scale_max))[0]["settings"]
    assert settings_["favorable_min"] == scale_max - 1


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"scale_max": 2}, "scale_max"),
        ({"scale_max": 11}, "scale_max"),
        ({"scale_max": "5"}, "scale_max"),
        ({"scale_max": True}, "scale_max"),
        ({"scale_max": 4.5}, "scale_max"),
        ({"favorable_min": 0}, "favorable_min"),
        ({"favorable_min": 6}, "favorable_min"),
        ({"scale_max": 7, "favorable_min": 8}, "favorable_min"),
        ({"low_label": "x" * 101}, "low_label"),
        ({"high_label": 5}, "high_label"),
    ],
)
def test_bad_scale_settings(changes, field):
    assert field in errors_of(question("scale", **changes))


def test_scale_accepts_its_settings():
    kwargs, errors = validate_question(
        question("scale", scale_max=7, favorable_min=6, low_label=" Not at all ", high_label="Completely")
    )
    assert errors == {}
    assert kwargs["settings"] == {"scale_max": 7, "favorable_min": 6, "low_label": "Not at all", "high_label": "Completely",
                                  "higher_is_better": True, "pinned": False}


def test_nps_takes_end_labels_but_no_scale():
    assert errors_of(question("nps", low_label="Never", high_label="Certainly")) == {}
    assert errors_of(question("nps", scale_max=10)) == {"scale_max": "Not used by nps questions; leave it out."}
    assert errors_of(question("nps", favorable_min=9)) == {"favorable_min": "Not used by nps questions; leave it out."}


def test_irrelevant_fields_are_tolerated_only_when_empty():
    assert errors_of(question("yes_no", options=None, scale_max=None, allow_other=False, unit="")) == {}
    assert "options" in errors_of(question("yes_no", options=CHOICES))
    assert "allow_other" in errors_of(question("single_choice", allow_other=True))
    assert "max_length" in errors_of(question("number", max_length=10))


def test_unknown_fields_are_rejected():
    assert errors_of(question("yes_no", colour="red")) == {"colour": "Unknown field."}


@pytest.mark.parametrize("kind", ["single_choice", "multi_choice"])
@pytest.mark.parametrize(
    "options, field",
    [
        (None, "options"),
        ("price, features", "options"),
        ([{"key": "price", "label": "Price"}], "options"),
        ([], "options"),
        ([{"key": "a", "label": "A"}] * 2, "options[1].key"),
        ([{"key": "Bad Key", "label": "A"}, {"key": "b", "label": "B"}], "options[0].key"),
        ([{"key": "a", "label": ""}, {"key": "b", "label": "B"}], "options[0].label"),
        ([{"key": "a"}, {"key": "b", "label": "B"}], "options[0].label"),
        (["a", "b"], "options[0]"),
        ([{"key": "a", "label": "A", "colour": "red"}, {"key": "b", "label": "B"}], "options[0].colour"),
        ([{"key": f"o{i}", "label": "x"} for i in range(51)], "options"),
    ],
)
def test_bad_choice_options(kind, options, field):
    assert field in errors_of(question(kind, options=options))


def test_multi_choice_other():
    kwargs, errors = validate_question(question("multi_choice", allow_other=True))
    assert errors == {} and kwargs["settings"]["allow_other"] is True
    assert "allow_other" in errors_of(question("multi_choice", allow_other="yes"))
    reserved = question("multi_choice", allow_other=True, options=[*CHOICES, {"key": "other", "label": "Other"}])
    assert "options" in errors_of(reserved)
    # Without the free-text answer, "other" is an ordinary option key.
    assert errors_of({**reserved, "allow_other": False}) == {}


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"min": 10, "max": 1}, "max"),
        ({"min": "1"}, "min"),
        ({"max": True}, "max"),
        ({"max": float("inf")}, "max"),
        ({"min": 1e13}, "min"),
        ({"unit": "x" * 41}, "unit"),
    ],
)
def test_bad_number_settings(changes, field):
    assert field in errors_of(question("number", **changes))


def test_number_bounds_and_unit():
    kwargs, errors = validate_question(question("number", min=0, max=2.5, unit="deals"))
    assert errors == {}
    assert kwargs["settings"] == {"min": 0, "max": 2.5, "unit": "deals", "whole_numbers": False,
                                  "higher_is_better": True, "pinned": False}
    assert errors_of(question("number", min=3, max=3)) == {}


@pytest.mark.parametrize("max_length, ok", [(0, False), (1, True), (10000, True), (10001, False), ("200", False)])
def test_text_max_length(max_length, ok):
    assert (errors_of(question("text", max_length=max_length)) == {}) is ok


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"key": None}, "key"),
        ({"key": ""}, "key"),
        ({"key": "Win"}, "key"),
        ({"key": "9lives"}, "key"),
        ({"key": "win-rate"}, "key"),
        ({"key": "a" * 65}, "key"),
        ({"type": "rating"}, "type"),
        ({"type": None}, "type"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 501}, "prompt"),
        ({"prompt": ["a"]}, "prompt"),
        ({"help": "x" * 1001}, "help"),
        ({"required": "yes"}, "required"),
    ],
)
def test_bad_common_fields(changes, field):
    assert field in errors_of(question("yes_no", **changes))


def test_a_question_must_be_an_object():
    assert validate_question(["key"], [])[1] == {"": "Each question must be an object."}


@given(st.text(max_size=70))
@example("errors")
@example("win_confidence")
def test_keys_are_slugs(key):
    """A key is accepted exactly when it is a slug the rep form does not use itself."""
    errors = errors_of(question("yes_no", key=key))
    assert ("key" not in errors) == bool(KEY_PATTERN.match(key.strip()) and key.strip() not in reserved_keys())


# -- show_if ---------------------------------------------------------------------------


def earlier_of(*items):
    """The earlier questions as validate_question_set would pass them."""
    return {item["key"]: validate_question(item)[0] for item in items}


def test_show_if_points_back_to_an_earlier_answer():
    earlier = earlier_of(GOOD["yes_no"])
    kwargs, errors = validate_question(
        question("single_choice", show_if={"question": "lost_deal", "equals": "yes"}), earlier
    )
    assert errors == {}
    assert (kwargs["show_if_key"], kwargs["show_if_value"]) == ("lost_deal", "yes")


@pytest.mark.parametrize(
    "show_if, field",
    [
        ({"question": "later_question", "equals": "yes"}, "show_if.question"),
        ({"question": "reasons", "equals": "price"}, "show_if.question"),  # itself
        ({"question": "lost_deal"}, "show_if.equals"),
        ("lost_deal", "show_if"),
        ({"question": ["lost_deal"], "equals": "yes"}, "show_if.question"),
        ({"question": "lost_deal", "equals": "maybe"}, "show_if.equals"),
        ({"question": "lost_deal", "equals": True}, "show_if.equals"),
        ({"question": "main_reason", "equals": "colour"}, "show_if.equals"),
        ({"question": "win_confidence", "equals": 6}, "show_if.equals"),
        ({"question": "win_confidence", "equals": 0}, "show_if.equals"),
        ({"question": "win_confidence", "equals": 2.5}, "show_if.equals"),
        ({"question": "recommend", "equals": 11}, "show_if.equals"),
        ({"question": "deals_lost", "equals": -1}, "show_if.equals"),
        ({"question": "deals_lost", "equals": "many"}, "show_if.equals"),
        ({"question": "anything_else", "equals": "hello"}, "show_if.equals"),
    ],
)
def test_bad_show_if(show_if, field):
    earlier = earlier_of(
        GOOD["yes_no"], GOOD["single_choice"], GOOD["scale"], GOOD["nps"],
        question("number", min=0), GOOD["text"],
    )
    assert field in errors_of(question("multi_choice", show_if=show_if), earlier)


@pytest.mark.parametrize(
    "target, equals, stored",
    [
        ("lost_deal", "no", "no"),
        ("main_reason", "features", "features"),
        ("win_confidence", 5, "5"),
        ("win_confidence", "1", "1"),
        ("recommend", 0, "0"),
        ("deals_lost", 2.5, "2.5"),
        ("deals_lost", 3.0, "3"),
    ],
)
def test_good_show_if_values(target, equals, stored):
    earlier = earlier_of(GOOD["yes_no"], GOOD["single_choice"], GOOD["scale"], GOOD["nps"], question("number", min=0))
    kwargs, errors = validate_question(question("text", show_if={"question": target, "equals": equals}), earlier)
    assert errors == {}
    assert kwargs["show_if_value"] == stored


# -- Properties ---------------------------------------------------------------------------

slugs = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
labels = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30)


@st.composite
def valid_questions(draw):
    kind = draw(st.sampled_from(sorted(GOOD)))
    data = {"key": draw(slugs), "type": kind, "prompt": draw(labels), "required": draw(st.booleans())}
    if kind == "scale":
        scale_max = draw(st.integers(3, 10))
        data.update(scale_max=scale_max, favorable_min=draw(st.integers(1, scale_max)))
    elif kind in ("single_choice", "multi_choice"):
        keys = draw(st.lists(slugs.filter(lambda k: k != "other"), min_size=2, max_size=6, unique=True))
        data["options"] = [{"key": key, "label": draw(labels),
                            "sentiment": draw(st.sampled_from(["good", "bad", "neutral"]))} for key in keys]
        if kind == "multi_choice":
            data["allow_other"] = draw(st.booleans())
    elif kind == "number":
        low = draw(st.none() | st.integers(-1000, 1000))
        high = draw(st.none() | st.integers(low if low is not None else -1000, 2000))
        data.update(min=low, max=high, unit=draw(st.none() | labels), whole_numbers=draw(st.booleans()))
    elif kind == "text":
        data["max_length"] = draw(st.integers(1, 10000))
    if kind != "text":
        data["pinned"] = draw(st.booleans())
    if kind in ("scale", "nps", "yes_no", "number"):
        data["higher_is_better"] = draw(st.booleans())
    return data


@given(valid_questions())
def test_every_valid_question_survives_a_round_trip_through_the_api_shape(data):
    kwargs, errors = validate_question(data)
    assert errors == {}
    version = QuestionSetVersion(number=1, status="draft")
    version.questions = [Question(position=1, **kwargs)]
    shown = question_to_dict(version.questions[0])
    assert set(shown) == {"key", "type", "prompt", "help", "required", "show_if"} | set(
        {"scale": {"scale_max", "favorable_min", "low_label", "high_label", "higher_is_better", "pinned"},
         "nps": {"low_label", "high_label", "higher_is_better", "pinned"},
         "single_choice": {"options", "pinned"}, "multi_choice": {"options", "allow_other", "pinned"},
         "number": {"min", "max", "unit", "whole_numbers", "higher_is_better", "pinned"},
         "yes_no": {"higher_is_better", "pinned"}, "text": {"max_length"}}[data["type"]]
    )
    assert validate_question(shown) == (kwargs, {})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(
    ["key", "type", "prompt", "help", "required", "scale_max", "favorable_min", "low_label", "high_label",
     "options", "allow_other", "min", "max", "unit", "max_length", "show_if", "extra"]), json_values))
def test_arbitrary_input_gives_errors_never_exceptions(data):
    kwargs, errors = validate_question(data, ["lost_deal"])
    assert isinstance(errors, dict)
    assert all(isinstance(message, str) and message for message in errors.values())


# -- Validating a whole set ---------------------------------------------------------------


def test_set_defaults():
    normalized, errors = validate_question_set({"name": " Win/loss pulse ", "questions": [GOOD["yes_no"]]})
    assert errors == {}
    assert {k: v for k, v in normalized.items() if k != "questions"} == {
        "name": "Win/loss pulse",
        "description": "",
        "confidentiality": "confidential",
        "min_group_size": 5,
        "comment_min_group_size": 10,
        "hold_until_close": False,
    }


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"confidentiality": "secret"}, "confidentiality"),
        ({"min_group_size": 2}, "min_group_size"),
        ({"min_group_size": "5"}, "min_group_size"),
        ({"comment_min_group_size": 4}, "comment_min_group_size"),
        ({"min_group_size": 8, "comment_min_group_size": 7}, "comment_min_group_size"),
        ({"hold_until_close": "yes"}, "hold_until_close"),
        ({"questions": []}, "questions"),
        ({"questions": None}, "questions"),
        ({"questions": "yes_no"}, "questions"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_bad_set_fields(changes, field):
    data = {"name": "Pulse", "questions": [GOOD["yes_no"]], **changes}
    assert field in validate_question_set(data)[1]


def test_comment_threshold_follows_a_raised_minimum():
    normalized, errors = validate_question_set({"name": "Pulse", "min_group_size": 12, "questions": [GOOD["yes_no"]]})
    assert errors == {}
    assert normalized["comment_min_group_size"] == 12


def test_question_errors_are_keyed_by_position():
    data = {
        "name": "Pulse",
        "questions": [
            GOOD["yes_no"],
            question("single_choice", options=[{"key": "a", "label": "A"}]),
            question("yes_no", prompt="Again?"),
            question("text", key="why", show_if={"question": "not_yet", "equals": "x"}),
            "not an object",
        ],
    }
    errors = validate_question_set(data)[1]
    assert set(errors) == {
        "questions[1].options",
        "questions[2].key",
        "questions[3].show_if.question",
        "questions[4]",
    }
    assert "Duplicate key 'lost_deal'" in errors["questions[2].key"]


def test_show_if_checks_the_value_against_the_earlier_question_in_a_set():
    data = {
        "name": "Pulse",
        "questions": [GOOD["yes_no"], question("text", show_if={"question": "lost_deal", "equals": "sometimes"})],
    }
    assert set(validate_question_set(data)[1]) == {"questions[1].show_if.equals"}


# -- The service ------------------------------------------------------------------------


PULSE = {
    "name": "Monthly win/loss pulse",
    "description": "What moved deals this month.",
    "confidentiality": "attributed",
    "min_group_size": 4,
    "questions": [
        question("scale", scale_max=7, low_label="Not at all", high_label="Completely"),
        GOOD["yes_no"],
        question("single_choice", show_if={"question": "lost_deal", "equals": "yes"}),
        question("number", min=0, unit="deals"),
    ],
}


@pytest.fixture
def pm(make_person):
    return make_person(email="pat@example.com", roles=("pm",))


def test_create_makes_draft_version_one(app, pm):
    question_set = create_question_set(pm, PULSE)
    db.session.commit()
    stored = db.session.get(QuestionSet, question_set.id)
    assert stored.owner == pm
    assert [(v.number, v.status) for v in stored.versions] == [(1, "draft")]
    assert [(q.position, q.key) for q in stored.draft.questions] == [
        (1, "win_confidence"), (2, "lost_deal"), (3, "main_reason"), (4, "deals_lost"),
    ]
    shown = question_set_to_dict(stored)
    assert shown["confidentiality"] == "attributed"
    assert shown["min_group_size"] == 4 and shown["comment_min_group_size"] == 10
    assert shown["versions"][0]["published_at"] is None
    questions = shown["versions"][0]["questions"]
    assert questions[0] == {
        "key": "win_confidence", "type": "scale", "prompt": "How confident are you?", "help": "", "required": True,
        "scale_max": 7, "favorable_min": 6, "low_label": "Not at all", "high_label": "Completely",
        "higher_is_better": True, "pinned": False, "show_if": None,
    }
    assert questions[2]["show_if"] == {"question": "lost_deal", "equals": "yes"}
    assert questions[3] == {
        "key": "deals_lost", "type": "number", "prompt": "Deals lost?", "help": "", "required": True,
        "min": 0, "max": None, "unit": "deals", "whole_numbers": False, "higher_is_better": True, "pinned": False,
        "show_if": None,
    }


def test_create_refuses_bad_input_and_adds_nothing(app, pm):
    with pytest.raises(QuestionSetInvalid) as refused:
        create_question_set(pm, {**PULSE, "min_group_size": 1})
    assert set(refused.value.errors) == {"min_group_size"}
    db.session.commit()
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 0


def test_publish_freezes_the_draft(app, pm):
    question_set = create_question_set(pm, PULSE)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    version = publish(question_set, now=now)
    db.session.commit()
    assert (version.number, version.status, version.published_at) == (1, "published", now)
    assert version_for_round(question_set) == version
    with pytest.raises(NothingToPublish):
        publish(question_set)


def test_an_empty_draft_cannot_be_published(app, pm):
    question_set = create_question_set(pm, {"name": "Empty"}, require_questions=False)
    with pytest.raises(NothingToPublish, match="no questions"):
        publish(question_set)
    assert version_for_round(question_set) is None


def published_set(pm):
    question_set = create_question_set(pm, PULSE)
    publish(question_set)
    db.session.commit()
    return question_set


@pytest.mark.parametrize(
    "change",
    [
        lambda version: setattr(version.questions[0], "prompt", "Reworded"),
        lambda version: setattr(version.questions[0], "settings", {"scale_max": 5, "favorable_min": 4}),
        lambda version: db.session.delete(version.questions[1]),
        lambda version: version.questions.append(Question(position=9, key="late", type="yes_no", prompt="Late?")),
        lambda version: setattr(version, "status", "draft"),
    ],
    ids=["reword", "change settings", "delete", "add", "unpublish"],
)
def test_a_published_version_cannot_change_through_the_orm(app, pm, change):
    version = published_set(pm).versions[0]
    change(version)
    with pytest.raises(PublishedVersionError):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(QuestionSetVersion, version.id).questions[0].prompt == "How confident are you?"


def test_editing_after_publish_makes_draft_n_plus_one(app, pm):
    question_set = published_set(pm)
    draft = replace_draft_questions(question_set, [GOOD["nps"], GOOD["text"]])
    db.session.commit()
    assert [(v.number, v.status) for v in question_set.versions] == [(1, "published"), (2, "draft")]
    assert [q.key for q in draft.questions] == ["recommend", "anything_else"]
    assert [q.key for q in question_set.versions[0].questions] == [
        "win_confidence", "lost_deal", "main_reason", "deals_lost",
    ]
    # A second edit changes the same draft, keeping the same keys.
    again = replace_draft_questions(question_set, [GOOD["text"], question("nps", prompt="Reworded")])
    db.session.commit()
    assert again.number == 2 and len(question_set.versions) == 2
    assert [(q.key, q.prompt) for q in again.questions] == [
        ("anything_else", "Anything else?"), ("recommend", "Reworded"),
    ]
    assert version_for_round(question_set).number == 1
    assert publish(question_set).number == 2
    assert version_for_round(question_set).number == 2


def test_invalid_replacement_changes_nothing(app, pm):
    question_set = published_set(pm)
    with pytest.raises(QuestionSetInvalid) as refused:
        replace_draft_questions(question_set, [GOOD["nps"], question("scale", scale_max=20)])
    assert set(refused.value.errors) == {"questions[1].scale_max"}
    db.session.rollback()
    assert [v.number for v in db.session.get(QuestionSet, question_set.id).versions] == [1]


def test_adding_and_removing_questions_edit_a_copy_of_the_published_version(app, pm):
    question_set = published_set(pm)
    added = add_question(question_set, question("text", show_if={"question": "lost_deal", "equals": "yes"}))
    db.session.commit()
    draft = question_set.draft
    assert draft.number == 2 and added.version == draft
    assert [q.key for q in draft.questions] == [
        "win_confidence", "lost_deal", "main_reason", "deals_lost", "anything_else",
    ]
    assert draft.questions[2].show_if_value == "yes"

    with pytest.raises(QuestionSetInvalid, match="main_reason, anything_else"):
        remove_question(question_set, "lost_deal")
    with pytest.raises(QuestionSetInvalid, match="already used"):
        add_question(question_set, GOOD["nps"] | {"key": "deals_lost"})
    with pytest.raises(QuestionSetInvalid):
        remove_question(question_set, "no_such_question")

    remove_question(question_set, "win_confidence")
    db.session.commit()
    assert [(q.position, q.key) for q in question_set.draft.questions] == [
        (1, "lost_deal"), (2, "main_reason"), (3, "deals_lost"), (4, "anything_else"),
    ]
    assert len(question_set.versions[0].questions) == 4


def record_an_answer(question_set, version):
    person = question_set.owner
    cadence = Cadence(name="Monthly", question_set=question_set, rrule="FREQ=MONTHLY", starts_on=date(2026, 1, 1))
    opened = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    round_ = Round(
        cadence=cadence, period_key="2026-01", question_set_version_id=version.id,
        scheduled_at=opened, opens_at=opened, closes_at=opened + timedelta(days=5),
    )
    invitation = Invitation(round=round_, person=person, timezone="UTC", send_at=opened)
    db.session.add_all([cadence, round_, invitation])
    db.session.flush()
    response = Response(invitation_id=invitation.id, round_id=round_.id)
    response.answers = [Answer(round_id=round_.id, question_key="lost_deal", value_num=1)]
    db.session.add(response)
    db.session.commit()


def test_settings_can_change_freely_before_any_answer(app, pm):
    question_set = create_question_set(pm, {**PULSE, "confidentiality": "confidential", "hold_until_close": True})
    update_settings(question_set, {"confidentiality": "attributed", "min_group_size": 3, "hold_until_close": False})
    db.session.commit()
    assert (question_set.confidentiality, question_set.min_group_size, question_set.hold_until_close) == (
        "attributed", 3, False,
    )


def test_settings_can_only_become_stricter_once_answers_exist(app, pm):
    question_set = published_set(pm)  # attributed, min 4, comments 10
    record_an_answer(question_set, question_set.versions[0])
    for loosening, field in [
        ({"min_group_size": 3}, "min_group_size"),
        ({"comment_min_group_size": 9}, "comment_min_group_size"),
    ]:
        with pytest.raises(QuestionSetInvalid) as refused:
            update_settings(question_set, loosening)
        assert set(refused.value.errors) == {field}
    update_settings(question_set, {"confidentiality": "confidential", "min_group_size": 6, "hold_until_close": True})
    db.session.commit()
    with pytest.raises(QuestionSetInvalid, match="only become stricter") as refused:
        update_settings(question_set, {"confidentiality": "attributed", "name": "Renamed"})
    assert set(refused.value.errors) == {"confidentiality"}
    with pytest.raises(QuestionSetInvalid):
        update_settings(question_set, {"hold_until_close": False})
    db.session.rollback()
    stored = db.session.get(QuestionSet, question_set.id)
    assert (stored.confidentiality, stored.min_group_size, stored.hold_until_close, stored.name) == (
        "confidential", 6, True, "Monthly win/loss pulse",
    )
    # Wording is not a promise to respondents.
    update_settings(stored, {"name": "Renamed", "description": None})
    assert stored.name == "Renamed" and stored.description == "What moved deals this month."


def test_settings_updates_are_validated(app, pm):
    question_set = create_question_set(pm, PULSE)
    with pytest.raises(QuestionSetInvalid) as refused:
        update_settings(question_set, {"min_group_size": 11, "questions": [], "colour": "red"})
    assert set(refused.value.errors) == {"comment_min_group_size", "questions", "colour"}


# -- The API ---------------------------------------------------------------------------


def test_api_create_read_list_and_publish(client, api_token):
    headers = api_token(roles=("pm",))
    created = client.post("/api/v1/question-sets", json=PULSE, headers=headers)
    assert created.status_code == 201, created.json
    body = created.json
    assert created.headers["Location"].endswith(f"/api/v1/question-sets/{body['id']}")
    assert body["name"] == PULSE["name"]
    assert [(v["number"], v["status"], v["published_at"]) for v in body["versions"]] == [(1, "draft", None)]
    assert [q["key"] for q in body["versions"][0]["questions"]] == [
        "win_confidence", "lost_deal", "main_reason", "deals_lost",
    ]

    read = client.get(f"/api/v1/question-sets/{body['id']}", headers=api_token(roles=("leader",)))
    assert read.status_code == 200 and read.json == body

    listed = client.get("/api/v1/question-sets", headers=headers)
    assert listed.status_code == 200
    assert [(item["id"], item["versions"]) for item in listed.json] == [
        (body["id"], [{"id": body["versions"][0]["id"], "number": 1, "status": "draft", "published_at": None}])
    ]

    published = client.post(f"/api/v1/question-sets/{body['id']}/publish", headers=headers)
    assert published.status_code == 200
    assert published.json["number"] == 1 and published.json["status"] == "published"
    assert published.json["id"] == body["versions"][0]["id"]
    assert published.json["published_at"].endswith("Z")

    again = client.post(f"/api/v1/question-sets/{body['id']}/publish", headers=headers)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert "no draft" in again.json["detail"]


def test_api_validation_failure_is_a_problem_and_stores_nothing(client, api_token):
    bad = {**PULSE, "confidentiality": "public", "questions": [*PULSE["questions"], question("scale", key="ease", scale_max=12)]}
    answer = client.post("/api/v1/question-sets", json=bad, headers=api_token(roles=("admin",)))
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert answer.json["status"] == 422
    assert answer.json["errors"] == {
        "confidentiality": "Must be one of: attributed, confidential.",
        "questions[4].scale_max": "Must be from 3 to 10.",
    }
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 0
    assert db.session.scalar(select(func.count(Question.id))) == 0


@pytest.mark.parametrize("body", ["not json", "[1, 2]"])
def test_api_create_needs_a_json_object(client, api_token, body):
    answer = client.post(
        "/api/v1/question-sets", data=body, content_type="application/json", headers=api_token(roles=("pm",))
    )
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"


def test_api_unknown_set_is_404(client, api_token):
    headers = api_token(roles=("pm",))
    assert client.get("/api/v1/question-sets/999", headers=headers).status_code == 404
    assert client.post("/api/v1/question-sets/999/publish", headers=headers).status_code == 404


def test_api_roles(client, api_token, app, pm):
    question_set = create_question_set(pm, PULSE)
    db.session.commit()
    leader = api_token(roles=("leader",))
    rep = api_token(roles=("rep",))
    assert client.post("/api/v1/question-sets", json=PULSE, headers=leader).status_code == 403
    assert client.post(f"/api/v1/question-sets/{question_set.id}/publish", headers=leader).status_code == 403
    assert client.get(f"/api/v1/question-sets/{question_set.id}", headers=leader).status_code == 200
    assert client.get("/api/v1/question-sets", headers=rep).status_code == 403
    for method, path in [
        ("post", "/api/v1/question-sets"),
        ("get", "/api/v1/question-sets"),
        ("get", f"/api/v1/question-sets/{question_set.id}"),
        ("post", f"/api/v1/question-sets/{question_set.id}/publish"),
    ]:
        answer = getattr(client, method)(path, json=PULSE if method == "post" else None)
        assert answer.status_code == 401
        assert answer.mimetype == "application/problem+json"
    assert db.session.get(QuestionSet, question_set.id).versions[0].status == "draft"
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 1


def test_openapi_describes_the_question_set_endpoints(client):
    document = client.get("/api/v1/openapi.json").json
    paths = document["paths"]
    assert set(paths["/question-sets"]) == {"get", "post"}
    assert set(paths["/question-sets/{question_set_id}/publish"]["post"]["responses"]) >= {"200", "401", "403", "404", "409"}
    assert set(paths["/question-sets"]["post"]["responses"]) >= {"201", "422"}
    schemas = document["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    mine = {path: spec for path, spec in paths.items() if path.startswith("/question-sets")}
    for ref in set(refs(mine)) | set(refs(schemas)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    question_fields = set(schemas["Question"]["properties"])
    assert question_fields == {
        "key", "type", "prompt", "help", "required", "scale_max", "favorable_min", "low_label", "high_label",
        "options", "allow_other", "min", "max", "unit", "max_length", "show_if", "whole_numbers",
        "higher_is_better", "pinned",
    }


@pytest.fixture
def pm_headers(api_token):
    return api_token(roles=("pm",))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=valid_questions())
def test_api_round_trips_any_valid_question(client, pm_headers, data):
    answer = client.post("/api/v1/question-sets", json={"name": "Generated", "questions": [data]}, headers=pm_headers)
    assert answer.status_code == 201, answer.json
    shown = answer.json["versions"][0]["questions"][0]
    assert validate_question(shown) == validate_question(data)


# -- Editing the draft through the service ------------------------------------------------


def test_update_question_renames_before_publish_and_refuses_after(app, pm):
    from surveys.questions.drafts import update_question

    question_set = create_question_set(pm, PULSE)
    update_question(question_set, "lost_deal", {**GOOD["yes_no"], "key": "lost_any", "prompt": "Lost any?"})
    assert [q.key for q in question_set.draft.questions] == ["win_confidence", "lost_any", "main_reason", "deals_lost"]
    assert question_set.draft.questions[2].show_if_key == "lost_any"
    with pytest.raises(QuestionSetInvalid, match="already used"):
        update_question(question_set, "lost_any", {**GOOD["yes_no"], "key": "deals_lost"})
    with pytest.raises(QuestionSetInvalid) as refused:
        update_question(question_set, "lost_any", {**GOOD["yes_no"], "key": "Bad Key"})
    assert set(refused.value.errors) == {"key"}
    publish(question_set)
    with pytest.raises(QuestionSetInvalid, match="Keys are fixed"):
        update_question(question_set, "lost_any", {**GOOD["yes_no"], "key": "renamed"})
    # Errors of the edited question are keyed by its own fields.
    with pytest.raises(QuestionSetInvalid) as refused:
        update_question(question_set, "win_confidence", question("scale", scale_max=30))
    assert refused.value.errors == {"scale_max": "Must be from 3 to 10."}
    db.session.commit()
    assert len(question_set.versions) == 1


def test_moves_that_would_put_a_question_above_its_condition_are_refused(app, pm):
    from surveys.questions.drafts import move_question, reorder_questions

    question_set = create_question_set(pm, PULSE)
    with pytest.raises(QuestionSetInvalid, match="'main_reason' is shown only depending on 'lost_deal'"):
        move_question(question_set, "main_reason", -1)
    with pytest.raises(QuestionSetInvalid, match="must stay below it"):
        move_question(question_set, "lost_deal", 1)
    with pytest.raises(QuestionSetInvalid, match="exactly once"):
        reorder_questions(question_set, ["lost_deal", "lost_deal", "main_reason", "deals_lost"])
    move_question(question_set, "win_confidence", 10)
    assert [q.key for q in question_set.draft.questions] == ["lost_deal", "main_reason", "deals_lost", "win_confidence"]


# -- The API: settings, draft, export, publishing with confirmation ------------------------


def test_api_patch_settings_only_stricter_once_answered(client, api_token, pm):
    headers = api_token(roles=("pm",))
    question_set = published_set(pm)
    url = f"/api/v1/question-sets/{question_set.id}"
    changed = client.patch(url, json={"min_group_size": 3, "hold_until_close": True}, headers=headers)
    assert changed.status_code == 200, changed.json
    assert (changed.json["min_group_size"], changed.json["hold_until_close"]) == (3, True)
    record_an_answer(question_set, question_set.versions[0])
    refused = client.patch(url, json={"comment_min_group_size": 9, "hold_until_close": False}, headers=headers)
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert set(refused.json["errors"]) == {"comment_min_group_size", "hold_until_close"}
    below_floor = client.patch(url, json={"min_group_size": 2}, headers=headers)
    assert below_floor.json["errors"] == {"min_group_size": "Must be from 3 to 10000."}
    looser = client.patch(url, json={"confidentiality": "confidential", "min_group_size": 4}, headers=headers)
    assert looser.status_code == 200
    back = client.patch(url, json={"confidentiality": "attributed"}, headers=headers)
    assert back.status_code == 422 and "only become stricter" in back.json["errors"]["confidentiality"]
    assert client.patch(url, json={"questions": []}, headers=headers).status_code == 422
    assert client.patch(url, json={"name": "X"}, headers=api_token(roles=("leader",))).status_code == 403


def test_api_put_draft_never_touches_a_published_version(client, api_token, pm):
    headers = api_token(roles=("pm",))
    question_set = published_set(pm)
    before = question_set_to_dict(question_set)["versions"][0]
    url = f"/api/v1/question-sets/{question_set.id}"
    draft = client.put(f"{url}/draft", json={"questions": [GOOD["nps"], question("yes_no", prompt="Reworded")]},
                       headers=headers)
    assert draft.status_code == 200, draft.json
    assert (draft.json["number"], draft.json["status"]) == (2, "draft")
    assert [q["key"] for q in draft.json["questions"]] == ["recommend", "lost_deal"]
    bad = client.put(f"{url}/draft", json={"questions": [question("scale", scale_max=1)]}, headers=headers)
    assert bad.status_code == 422 and bad.json["errors"] == {"questions[0].scale_max": "Must be from 3 to 10."}
    assert client.put(f"{url}/draft", json={"questions": [], "extra": 1}, headers=headers).status_code == 422
    assert client.put(f"{url}/draft", json=[1], headers=headers).status_code == 400
    db.session.expire_all()
    read = client.get(url, headers=headers).json
    assert read["versions"][0] == before
    assert [q["prompt"] for q in read["versions"][1]["questions"]] == ["Would customers recommend us?", "Reworded"]


def test_api_publish_asks_for_confirmation_when_a_measure_breaks(client, api_token, pm):
    headers = api_token(roles=("pm",))
    question_set = published_set(pm)
    url = f"/api/v1/question-sets/{question_set.id}"
    questions = [q for q in client.get(url, headers=headers).json["versions"][0]["questions"]]
    questions[0] = {**questions[0], "scale_max": 5, "favorable_min": 4}  # was 1-7
    questions[2] = {**questions[2], "options": [{"key": "price", "label": "Cost"}, {"key": "speed", "label": "Speed"}]}
    questions[3] = {**questions[3], "prompt": "How many deals did you lose?"}  # wording only
    assert client.put(f"{url}/draft", json={"questions": questions}, headers=headers).status_code == 200

    refused = client.post(f"{url}/publish", headers=headers)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert set(refused.json["errors"]) == {"win_confidence", "main_reason"}
    assert "Scale changed from 1–7 to 1–5." in refused.json["errors"]["win_confidence"]
    assert "Option keys removed: features." in refused.json["errors"]["main_reason"]
    assert "win_confidence, main_reason" in refused.json["detail"]
    assert client.post(f"{url}/publish", json={"confirm_breaking": "yes"}, headers=headers).status_code == 422
    assert client.post(f"{url}/publish", json={"confirm": True}, headers=headers).status_code == 422
    assert client.post(f"{url}/publish", data="nope", content_type="application/json", headers=headers).status_code == 400
    assert client.post(f"{url}/publish", json={"confirm_breaking": False}, headers=headers).status_code == 409
    db.session.expire_all()
    assert db.session.get(QuestionSet, question_set.id).versions[1].status == "draft"

    published = client.post(f"{url}/publish", json={"confirm_breaking": True}, headers=headers)
    assert published.status_code == 200 and published.json["number"] == 2


def test_api_export_is_a_create_body(client, api_token, pm):
    headers = api_token(roles=("pm",))
    question_set = published_set(pm)
    exported = client.get(f"/api/v1/question-sets/{question_set.id}/export", headers=api_token(roles=("leader",)))
    assert exported.status_code == 200
    assert exported.json["questions"][2]["show_if"] == {"question": "lost_deal", "equals": "yes"}
    imported = client.post("/api/v1/question-sets", json=exported.json, headers=headers)
    assert imported.status_code == 201, imported.json
    assert imported.json["versions"][0]["questions"] == question_set_to_dict(question_set)["versions"][0]["questions"]


def test_openapi_describes_the_new_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/question-sets/{question_set_id}"]) == {"get", "patch"}
    assert "put" in paths["/question-sets/{question_set_id}/draft"]
    assert "get" in paths["/question-sets/{question_set_id}/export"]
    publish_spec = paths["/question-sets/{question_set_id}/publish"]["post"]
    assert "confirm_breaking" in publish_spec["description"]
    assert publish_spec["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("PublishInput")
