"""The version diff: every kind of change classified, and the measure kept in
step with the scorecards' own definition (surveys.metrics.QuestionSpec)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cadence.models  # noqa: F401  (Person, which the question-set mappers refer to)
from surveys.metrics import QuestionSpec
from surveys.models import Question, QuestionSetVersion
from surveys.version_diff import ADDED, MEASURE, REMOVED, WORDING, breaking_changes, diff_versions

OPTIONS = [{"key": "acme", "label": "Acme"}, {"key": "globex", "label": "Globex"}]


def q(key, type_="scale", prompt=None, position=1, **settings):
    show_if = settings.pop("show_if", None)
    return Question(
        key=key, type=type_, prompt=prompt or f"About {key}?", help=settings.pop("help", ""),
        required=settings.pop("required", True), position=position, settings=settings,
        show_if_key=show_if[0] if show_if else None, show_if_value=show_if[1] if show_if else None,
    )


def version(*questions):
    for position, question in enumerate(questions, start=1):
        question.position = position
    return QuestionSetVersion(number=1, status="draft", questions=list(questions))


def only_change(old, new):
    changes = diff_versions(version(old), version(new))
    assert len(changes) == 1, changes
    return changes[0]


SCALE = {"scale_max": 5, "favorable_min": 4}


@pytest.mark.parametrize(
    "old, new, detail",
    [
        (q("x", **SCALE), q("x", "nps"), "Type changed from scale to nps."),
        (q("x", **SCALE), q("x", scale_max=7, favorable_min=6), "Scale changed from 1–5 to 1–7."),
        (q("x", **SCALE), q("x", scale_max=5, favorable_min=5), "Favourable threshold changed from 4 to 5."),
        (q("x", "single_choice", options=OPTIONS), q("x", "single_choice", options=OPTIONS[:1] + [{"key": "initech", "label": "Globex"}]),
         "Option keys removed: globex."),
        (q("x", "multi_choice", options=OPTIONS), q("x", "multi_choice", options=OPTIONS + [{"key": "initech", "label": "I"}]),
         "Option keys added: initech."),
        (q("x", "multi_choice", options=OPTIONS), q("x", "multi_choice", options=OPTIONS, allow_other=True),
         "Option keys added: other."),
        (q("x", "yes_no"), q("x", "number"), "Type changed from yes_no to number."),
        # Issue 12: a number question's unit is part of its measure (deals are not opportunities).
        (q("x", "number", unit="deals"), q("x", "number", unit="opportunities"), "The unit changed: deals → opportunities."),
    ],
    ids=["type", "scale", "threshold", "option key renamed", "option added", "other allowed", "yes_no to number",
         "unit"],
)
def test_measure_changes_break_the_trend(old, new, detail):
    change = only_change(old, new)
    assert change.kind == MEASURE and change.breaks_trend
    assert detail in change.details


@pytest.mark.parametrize(
    "old, new, detail",
    [
        (q("x", prompt="Old?", **SCALE), q("x", prompt="New?", **SCALE), "Question reworded."),
        (q("x", help="a", **SCALE), q("x", help="b", **SCALE), "Help text changed."),
        (q("x", low_label="Low", **SCALE), q("x", low_label="Bottom", **SCALE), "The low end label changed: Low → Bottom."),
        (q("x", required=True, **SCALE), q("x", required=False, **SCALE), "Now optional."),
        (q("x", "single_choice", options=OPTIONS), q("x", "single_choice", options=[OPTIONS[0], {"key": "globex", "label": "Globex Inc"}]),
         "Option globex relabelled: “Globex” → “Globex Inc”."),
        (q("x", "single_choice", options=OPTIONS), q("x", "single_choice", options=OPTIONS[::-1]), "Options reordered."),
        (q("x", "number", min=0, max=10.0), q("x", "number", min=0, max=20), "The maximum changed: 10 → 20."),
        (q("x", "text", max_length=100), q("x", "text", max_length=500), "The maximum length changed: 100 → 500."),
        (q("x", "text", show_if=("a", "yes")), q("x", "text", show_if=("a", "no")),
         "Show-if changed: shown if a = yes → shown if a = no."),
    ],
    ids=["prompt", "help", "label", "required", "option label", "option order", "bounds", "length", "show-if"],
)
def test_wording_changes_keep_the_trend(old, new, detail):
    change = only_change(old, new)
    assert change.kind == WORDING and not change.breaks_trend
    assert detail in change.details


def test_the_default_favourable_threshold_is_the_same_measure_as_the_explicit_one():
    assert diff_versions(version(q("x", scale_max=5)), version(q("x", scale_max=5, favorable_min=4))) == []


def test_added_removed_and_moved_questions():
    old = version(q("a", "yes_no"), q("b", "nps"), q("c", "text"))
    new = version(q("c", "text"), q("a", "yes_no"), q("d", "scale", **SCALE))
    changes = diff_versions(old, new)
    assert [(c.key, c.kind) for c in changes] == [("c", WORDING), ("a", WORDING), ("d", ADDED), ("b", REMOVED)]
    assert changes[0].details == ("Moved (it was question 3).",)
    assert changes[1].details == ("Moved (it was question 1).",)
    assert "A 1–5 scale, favourable from 4; its trend starts here." in changes[2].details
    assert changes[3].prompt == "About b?"
    assert breaking_changes(changes) == []


def test_adding_a_question_does_not_count_as_moving_the_ones_after_it():
    old = version(q("a", "yes_no"), q("b", "nps"))
    new = version(q("new", "yes_no"), q("a", "yes_no"), q("b", "nps"))
    assert [(c.key, c.kind) for c in diff_versions(old, new)] == [("new", ADDED)]


def test_no_previous_version_means_everything_is_added():
    changes = diff_versions(None, version(q("a", "yes_no"), q("b", "nps")))
    assert [(c.key, c.kind) for c in changes] == [("a", ADDED), ("b", ADDED)]


def test_a_measure_change_with_rewording_is_still_a_measure_change():
    change = only_change(q("x", prompt="Old?", **SCALE), q("x", prompt="New?", scale_max=7, favorable_min=6))
    assert change.kind == MEASURE
    assert change.details == ("Scale changed from 1–5 to 1–7.", "Favourable threshold changed from 4 to 6.", "Question reworded.")


question_shapes = st.one_of(
    st.builds(lambda m, f: {"type": "scale", "scale_max": m, "favorable_min": min(f, m)},
              st.integers(3, 10), st.integers(1, 10)),
    st.just({"type": "nps"}),
    st.just({"type": "yes_no"}),
    st.just({"type": "number"}),
    st.just({"type": "text"}),
    st.builds(lambda t, keys, other: {"type": t, "options": [{"key": k, "label": k.upper()} for k in keys],
                                      "allow_other": other and t == "multi_choice"},
              st.sampled_from(["single_choice", "multi_choice"]),
              st.lists(st.sampled_from(["acme", "globex", "initech", "umbrella"]), min_size=2, max_size=4, unique=True),
              st.booleans()),
)


def as_question(shape, key="x", prompt="P?"):
    settings = {k: v for k, v in shape.items() if k != "type"}
    return q(key, shape["type"], prompt=prompt, **settings)


@given(old=question_shapes, new=question_shapes, reworded=st.booleans())
def test_the_diff_breaks_exactly_where_the_scorecard_does(old, new, reworded):
    before, after = as_question(old), as_question(new, prompt="Reworded?" if reworded else "P?")
    changes = diff_versions(version(before), version(after))
    scorecard_breaks = QuestionSpec.from_question(before).measure != QuestionSpec.from_question(after).measure
    assert bool(breaking_changes(changes)) == scorecard_breaks
    if not scorecard_breaks and not reworded and changes:
        # Only presentation (option order or labels) can differ then.
        assert changes[0].kind == WORDING
