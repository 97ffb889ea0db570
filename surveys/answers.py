"""The rep form: a WTForms class built from a frozen version, server-side
validation (including show-if), and storing a response.

Field names are the question keys (docs/api.md). A multi_choice question posts one
value per chosen option key; its "other" text, when allowed, is the field
`<key>__other`. A question hidden by its show-if condition is neither
validated nor stored, whatever was posted for it.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_wtf import FlaskForm
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wtforms import (
    DecimalField,
    Field,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, StopValidation

from cadence.models import Invitation
from surveys.extensions import db
from surveys.models import Answer, Question, QuestionSetVersion, Response
from surveys.caches import BoundedCache
from surveys.scorecard import tallies

OTHER_SUFFIX = "__other"
OTHER_OPTION = "other"
# Number answers stay within what people count and what a float holds exactly
# (the same limit as number bounds in surveys.questions).
NUMBER_ANSWER_LIMIT = 1e12
# Seconds a rep needs per question, for the "about N minutes" promise.
SECONDS_PER_QUESTION = {"text": 45, "multi_choice": 20}
DEFAULT_SECONDS_PER_QUESTION = 15


class ChoiceField(RadioField):
    """Radio buttons; an unanswered optional question is not "an invalid choice"."""

    def pre_validate(self, form):
        if not self.raw_data:
            return
        super().pre_validate(form)


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class NumberAnswerField(DecimalField):
    """A decimal field whose parse error speaks plainly."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            raise ValueError("Enter a number, like 12 or 3.5.") from error


class FiniteNumber:
    """Refuses NaN, infinities and absurd magnitudes before any range check
    (comparing a Decimal NaN would raise, not fail validation)."""

    def __call__(self, form, field):
        value = field.data
        if value is not None and (not value.is_finite() or abs(value) > NUMBER_ANSWER_LIMIT):
            raise StopValidation("Enter a number, like 12 or 3.5.")


class WholeNumber:
    """A number question that takes whole numbers only refuses 2.5 (a count of deals)."""

    def __call__(self, form, field):
        if field.data is not None and field.data != field.data.to_integral_value():
            raise StopValidation("Enter a whole number, like 12.")


class RepFormBase(FlaskForm):
    """Rep forms keep their CSRF token valid for a long answering session."""

    class Meta:
        @property
        def csrf_time_limit(self):
            return current_app.config.get("REP_FORM_CSRF_TIME_LIMIT", 7 * 24 * 3600)


def _required(question: Question, message="Please answer this question."):
    return InputRequired(message) if question.required else Optional()


def field_for(question: Question) -> Field:
    label = question.prompt
    description = question.help or ""
    if question.type == "scale":
        top = question.setting("scale_max", 5)
        return ChoiceField(label, choices=[(str(v), str(v)) for v in range(1, top + 1)], validators=[_required(question, "Choose a value on the scale.")], description=description)
    if question.type == "nps":
        return ChoiceField(label, choices=[(str(v), str(v)) for v in range(0, 11)], validators=[_required(question, "Choose a value from 0 to 10.")], description=description)
    if question.type == "single_choice":
        return ChoiceField(label, choices=[(o["key"], o["label"]) for o in question.options], validators=[_required(question, "Choose one option.")], description=description)
    if question.type == "multi_choice":
        return MultiCheckboxField(label, choices=choice_options(question), validators=[_required(question, "Choose at least one option.")], description=description)
    if question.type == "yes_no":
        return ChoiceField(label, choices=[("yes", "Yes"), ("no", "No")], validators=[_required(question, "Answer yes or no.")], description=description)
    if question.type == "number":
        low, high = question.setting("min"), question.setting("max")
        validators = [_required(question, "Enter a number."), FiniteNumber()]
        if question.setting("whole_numbers"):
            validators.append(WholeNumber())
        if low is not None or high is not None:
            validators.append(NumberRange(min=low, max=high, message=_range_message(low, high)))
        return NumberAnswerField(label, validators=validators, description=description, places=None)
    if question.type == "text":
        limit = question.setting("max_length", 2000)
        return TextAreaField(label, validators=[_required(question, "Please write an answer."), Length(max=limit, message=f"At most {limit} characters, please (you wrote %(length)d).")], description=description)
    raise ValueError(f"unknown question type {question.type}")


def choice_options(question: Question) -> list[tuple[str, str]]:
    """A multi-choice question that allows "other" always offers it last."""
    choices = [(o["key"], o["label"]) for o in question.options]
    if question.type == "multi_choice" and question.setting("allow_other") and OTHER_OPTION not in dict(choices):
        choices.append((OTHER_OPTION, "Other"))
    return choices


def _range_message(low, high):
    if low is not None and high is not None:
        return f"Enter a number from {plain_number(low)} to {plain_number(high)}."
    if low is not None:
        return f"Enter a number of at least {plain_number(low)}."
    return f"Enter a number of at most {plain_number(high)}."


def plain_number(value):
    """12.0 -> 12, for people and for show-if comparisons."""
    return int(value) if float(value).is_integer() else value


def estimated_minutes(version: QuestionSetVersion) -> int:
    """An honest "about N minutes" for the intro of the form."""
    seconds = sum(SECONDS_PER_QUESTION.get(q.type, DEFAULT_SECONDS_PER_QUESTION) for q in version.questions)
    return max(1, round(seconds / 60))


# Published versions never change, so a process reads each one once and
# builds its form class once (drafts, in the designer's preview, are built
# every time). See surveys.caches.
_PUBLISHED_VERSIONS = BoundedCache()
_PUBLISHED_FORM_CLASSES = BoundedCache()


def published_version(version_id: int) -> QuestionSetVersion:
    """The published version `version_id` with its questions, for the rep
    form (callers check that it is published). The instance is kept out of
    every session: read its columns and questions, and reach its set by id."""
    version = _PUBLISHED_VERSIONS.get(version_id)
    if version is None:
        version = db.session.scalar(
            select(QuestionSetVersion)
            .where(QuestionSetVersion.id == version_id)
            .options(selectinload(QuestionSetVersion.questions))
            .execution_options(populate_existing=True)
        )
        # Detached (questions too, by cascade) so that no commit expires it.
        db.session.expunge(version)
        _PUBLISHED_VERSIONS.remember(version_id, version)
    return version


def form_class_for(version: QuestionSetVersion) -> type[RepFormBase]:
    published = version.is_published and version.id is not None
    if published and version.id in _PUBLISHED_FORM_CLASSES:
        return _PUBLISHED_FORM_CLASSES[version.id]
    form_class = _build_form_class(version)
    if published:
        _PUBLISHED_FORM_CLASSES.remember(version.id, form_class)
    return form_class


def _build_form_class(version: QuestionSetVersion) -> type[RepFormBase]:
    attributes = {}
    for question in version.questions:
        attributes[question.key] = field_for(question)
        if question.type == "multi_choice" and question.setting("allow_other"):
            attributes[question.key + OTHER_SUFFIX] = StringField(
                "Other (please say what)", validators=[Optional(), Length(max=200)]
            )
    return type(f"RepForm{version.id}", (RepFormBase,), attributes)


def allowed_field_names(version: QuestionSetVersion) -> set[str]:
    names = {"csrf_token"}
    for question in version.questions:
        names.add(question.key)
        if question.type == "multi_choice" and question.setting("allow_other"):
            names.add(question.key + OTHER_SUFFIX)
    return names


# -- Show-if ---------------------------------------------------------------------------


def answer_matches(value, expected: str | None) -> bool:
    """Does an answer satisfy a show-if condition? Values compare as strings;
    a multi-choice answer matches when the option is among those chosen."""
    if value is None or expected is None:
        return False
    if isinstance(value, (list, tuple, set)):
        return expected in value
    return _as_text(value) == str(expected)


def _as_text(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "is_integer") and value == int(value):  # Decimal
        return str(int(value))
    return str(value)


def visible_questions(version: QuestionSetVersion, values: dict) -> list[Question]:
    """Questions shown for these answers, in order. A question whose condition
    names a hidden question is hidden too."""
    shown: dict[str, bool] = {}
    result = []
    for question in version.questions:
        if question.show_if_key:
            visible = shown.get(question.show_if_key, False) and answer_matches(
                values.get(question.show_if_key), question.show_if_value
            )
        else:
            visible = True
        shown[question.key] = visible
        if visible:
            result.append(question)
    return result


# -- Validation ----------------------------------------------------------------------


class UnexpectedFields(ValueError):
    """The post carries fields the form does not have: tampering."""


def validate_submission(form: RepFormBase, version: QuestionSetVersion, posted_names) -> dict | None:
    """Validate in question order so show-if sees earlier answers. Returns the
    cleaned answers {key: value} of visible questions, or None with errors on
    the form's fields."""
    unexpected = set(posted_names) - allowed_field_names(version)
    if unexpected:
        raise UnexpectedFields(", ".join(sorted(unexpected)))
    ok = True
    if form.meta.csrf:
        csrf_field = form._fields.get("csrf_token")
        if csrf_field is not None and not csrf_field.validate(form):
            ok = False
    cleaned: dict = {}
    shown: dict[str, bool] = {}
    for question in version.questions:
        field = form[question.key]
        if question.show_if_key:
            visible = shown.get(question.show_if_key, False) and answer_matches(
                cleaned.get(question.show_if_key), question.show_if_value
            )
        else:
            visible = True
        shown[question.key] = visible
        if not visible:
            field.errors = []
            continue
        if question.type != "multi_choice" and len(field.raw_data or []) > 1:
            # Two values for a one-value question: not something the form sends.
            field.errors = ["Give one answer only."]
            ok = False
            continue
        if question.type == "multi_choice" and not set(field.raw_data or []) <= {key for key, _ in field.choices}:
            # Checked here because Optional() wipes the field's own choice
            # errors when the first posted value is empty.
            field.errors = ["Choose from the options shown."]
            ok = False
            continue
        if not field.validate(form):
            ok = False
            continue
        value = clean_value(question, field.data)
        if value is None and question.required:
            # Only spaces in a required text answer.
            field.errors = list(field.errors) + ["Please write an answer."]
            ok = False
            continue
        other_text = None
        if question.type == "multi_choice" and question.setting("allow_other"):
            other_field = form[question.key + OTHER_SUFFIX]
            if not other_field.validate(form):
                ok = False
                continue
            other_text = (other_field.data or "").strip() or None
            if value and OTHER_OPTION in value and not other_text and question.required:
                other_field.errors = list(other_field.errors) + ["Say what the other option is."]
                ok = False
                continue
        if value is not None and value != []:
            cleaned[question.key] = value
            if other_text and value and OTHER_OPTION in value:
                cleaned[question.key + OTHER_SUFFIX] = other_text
    return cleaned if ok else None


def typed_values(version: QuestionSetVersion, values: dict) -> dict:
    """Form values (as posted or prefilled) typed like cleaned answers, for
    show-if evaluation when the page is drawn; unparsable values are left out."""
    typed = {}
    for question in version.questions:
        value = values.get(question.key)
        if value in (None, "", []):
            continue
        try:
            typed[question.key] = clean_value(question, value)
        except (TypeError, ValueError, ArithmeticError):
            continue
    return typed


def clean_value(question: Question, data):
    if data is None or data == "":
        return None
    if question.type in ("scale", "nps"):
        return int(data)
    if question.type == "number":
        return float(data)
    if question.type == "multi_choice":
        return list(dict.fromkeys(data))
    if question.type == "text":
        text = data.strip()
        return text or None
    return data


# -- Storing ---------------------------------------------------------------------------


def answer_rows(question: Question, value, other_text=None) -> list[dict]:
    """How one answer is stored (see surveys.models); every row has the same
    columns so they insert in one executemany."""
    if question.type in ("scale", "nps", "number"):
        values = [(float(value), None, None)]
    elif question.type == "yes_no":
        values = [(1.0 if value == "yes" else 0.0, None, None)]
    elif question.type in ("single_choice", "text"):
        values = [(None, value, None)]
    elif question.type == "multi_choice":
        values = [(None, key, other_text if key == OTHER_OPTION else None) for key in value]
    else:
        raise ValueError(question.type)
    return [{"value_num": num, "value_text": text, "detail": detail} for num, text, detail in values]


# A submission is Canary's busiest write (B4): its statements are built once
# (building one costs more than running it on SQLite), and it goes straight
# to the tables because the unit of work would add nothing to four statements.
_responses, _answers, _invitations = Response.__table__, Answer.__table__, Invitation.__table__
FIND_RESPONSE = select(_responses.c.id).where(_responses.c.invitation_id == bindparam("invitation_id"))
INSERT_RESPONSE = insert(_responses).returning(_responses.c.id)
DELETE_ANSWERS = (
    delete(_answers)
    .where(_answers.c.response_id == bindparam("response_id"))
    .returning(_answers.c.question_key, _answers.c.value_num, _answers.c.value_text)
)
TOUCH_RESPONSE = (
    update(_responses)
    .where(_responses.c.id == bindparam("response_id"))
    .values(updated_at=bindparam("changed_at", type_=_responses.c.updated_at.type))
)
INSERT_ANSWERS = insert(_answers)
MARK_RESPONDED = (
    update(_invitations)
    .where(_invitations.c.id == bindparam("invitation_id"), _invitations.c.responded_at.is_(None))
    .values(responded_at=bindparam("answered_at", type_=_invitations.c.responded_at.type))
)


def store_response(invitation: Invitation, version: QuestionSetVersion, cleaned: dict, now: datetime) -> int:
    """Replace the invitation's answers with `cleaned`, all or nothing, and
    return the response's id. Two submissions racing for the same invitation
    end with one response."""
    copied = {"round_id": invitation.round_id, "team_id": invitation.team_id, "region": invitation.region,
              "segment": invitation.segment}
    answers = []
    for question in version.questions:
        if question.key in cleaned:
            for row in answer_rows(question, cleaned[question.key], cleaned.get(question.key + OTHER_SUFFIX)):
                answers.append({**copied, "question_key": question.key, **row})
    # `responded_at` is set in the same transaction as the response, so a
    # first answer can skip looking for an earlier one; a racing twin makes
    # the INSERT fail on the unique invitation id, and the retry replaces.
    maybe_answered = invitation.responded_at is not None
    invitation_id, round_id = invitation.id, invitation.round_id
    cell = (invitation.team_id, invitation.region, invitation.segment)
    text_keys = tallies.text_keys_of(version)
    for attempt in range(2):
        try:
            response_id, removed = _replace_answers(invitation_id, round_id, answers, now, maybe_answered)
            # Last, just before the commit: the tally rows stay locked briefly.
            added = [(row["question_key"], row["value_num"], row["value_text"]) for row in answers]
            tallies.record_change(round_id, cell, text_keys, removed, added)
            db.session.commit()
            return response_id
        except IntegrityError:
            db.session.rollback()
            if attempt:
                raise
            maybe_answered = True
    raise RuntimeError("unreachable")


def _replace_answers(invitation_id: int, round_id: int, answers: list[dict], now: datetime,
                     maybe_answered: bool) -> tuple[int, list[tuple]]:
    """The response's id and the (key, value_num, value_text) rows it had before."""
    session = db.session
    response_id = session.scalar(FIND_RESPONSE, {"invitation_id": invitation_id}) if maybe_answered else None
    removed = []
    if response_id is None:
        response_id = session.scalar(
            INSERT_RESPONSE, {"invitation_id": invitation_id, "round_id": round_id, "submitted_at": now, "updated_at": now}
        )
    else:
        removed = [tuple(row) for row in session.execute(DELETE_ANSWERS, {"response_id": response_id})]
        session.execute(TOUCH_RESPONSE, {"response_id": response_id, "changed_at": now})
    if answers:
        session.execute(INSERT_ANSWERS, [{"response_id": response_id, **row} for row in answers])
    session.execute(MARK_RESPONDED, {"invitation_id": invitation_id, "answered_at": now})
    return response_id, removed


def stored_values(response: Response | None, version: QuestionSetVersion) -> dict:
    """A response's answers as form data, to prefill the form on return."""
    if response is None:
        return {}
    by_key: dict[str, list[Answer]] = {}
    for answer in response.answers:
        by_key.setdefault(answer.question_key, []).append(answer)
    values = {}
    for question in version.questions:
        answers = by_key.get(question.key)
        if not answers:
            continue
        first = answers[0]
        if question.type in ("scale", "nps"):
            values[question.key] = str(int(first.value_num))
        elif question.type == "number":
            values[question.key] = plain_number(first.value_num)
        elif question.type == "yes_no":
            values[question.key] = "yes" if first.value_num else "no"
        elif question.type == "multi_choice":
            values[question.key] = [a.value_text for a in answers]
            other = next((a.detail for a in answers if a.value_text == OTHER_OPTION and a.detail), None)
            if other:
                values[question.key + OTHER_SUFFIX] = other
        else:
            values[question.key] = first.value_text
    return values

