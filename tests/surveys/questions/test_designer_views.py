"""The staff question-set designer, driven through the test client with CSRF on."""

import html
import io
import re

import pytest
from sqlalchemy import func, select

from surveys.extensions import db
from surveys.models import Question, QuestionSet
from surveys.questions.drafts import create_question_set
from tests.conftest import csrf_token_from


@pytest.fixture
def pm_client(signed_in_client):
    return signed_in_client(roles=("pm",))


def post_form(client, page_url, action_url, data):
    """Post `data` to `action_url` with the CSRF token from `page_url`."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(action_url, data={**data, "csrf_token": csrf_token_from(page.text)})


def make_set(client, **fields):
    data = {"name": "Monthly win/loss pulse", "description": "", "confidentiality": "confidential", "min_group_size": "5"}
    answer = post_form(client, "/question-sets/new", "/question-sets/new", {**data, **fields})
    assert answer.status_code == 302, answer.text
    return db.session.scalar(select(QuestionSet).order_by(QuestionSet.id.desc()))


def add(client, question_set, **fields):
    url = f"/question-sets/{question_set.id}"
    data = {"required": "y", **fields}
    return post_form(client, url, f"{url}/questions", data)


def field_errors(page_html, field_id):
    """The messages shown under one field."""
    match = re.search(rf'<ul class="field-errors" id="{field_id}-error">(.*?)</ul>', page_html, re.S)
    return [html.unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1))] if match else []


def test_the_empty_list_says_what_to_do(pm_client):
    page = pm_client.get("/question-sets/")
    assert page.status_code == 200
    assert "create your first question set" in page.text.lower()
    assert 'href="/question-sets/new"' in page.text


def test_create_a_set(pm_client):
    question_set = make_set(
        pm_client, name="Win/loss <pulse>", description="Monthly", confidentiality="attributed", min_group_size="7"
    )
    assert (question_set.name, question_set.description, question_set.confidentiality, question_set.min_group_size) == (
        "Win/loss <pulse>", "Monthly", "attributed", 7,
    )
    assert question_set.comment_min_group_size == 10
    assert [(v.number, v.status) for v in question_set.versions] == [(1, "draft")]
    assert question_set.owner.email == "staff@example.com"

    listing = pm_client.get("/question-sets/")
    assert "Win/loss &lt;pulse&gt;" in listing.text and "<pulse>" not in listing.text
    assert f'href="/question-sets/{question_set.id}"' in listing.text
    page = pm_client.get(f"/question-sets/{question_set.id}")
    assert "No questions yet" in page.text
    assert "Publish version 1" in page.text


def test_a_bad_set_shows_errors_keeps_input_and_stores_nothing(pm_client):
    answer = post_form(
        pm_client, "/question-sets/new", "/question-sets/new",
        {"name": "", "description": "Kept <text>", "confidentiality": "confidential", "min_group_size": "2"},
    )
    assert answer.status_code == 422
    assert field_errors(answer.text, "name") == ["Required."]
    assert field_errors(answer.text, "min_group_size") == ["Must be from 3 to 10000."]
    assert "Kept &lt;text&gt;" in answer.text
    assert 'value="2"' in answer.text
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 0


ALL_TYPES = [
    ({"key": "win_confidence", "question_type": "scale", "prompt": "How confident?", "scale_max": "7",
      "favorable_min": "6", "low_label": "Not at all", "high_label": "Completely", "higher_is_better": "higher",
      "pinned": "y"},
     {"scale_max": 7, "favorable_min": 6, "low_label": "Not at all", "high_label": "Completely",
      "higher_is_better": True, "pinned": True}),
    ({"key": "recommend", "question_type": "nps", "prompt": "Would customers recommend us?"},
     {"low_label": None, "high_label": None, "higher_is_better": True, "pinned": False}),
    # Losing a deal is bad news: lower is better.
    ({"key": "lost_deal", "question_type": "yes_no", "prompt": "Did you lose a deal?", "higher_is_better": "lower"},
     {"higher_is_better": False, "pinned": False}),
    ({"key": "lost_to", "question_type": "single_choice", "prompt": "Lost to whom?",
      "options": "acme: Acme Corp | bad\r\n\r\nGlobex|BAD\r\nno_decision: No decision | neutral\r\nwon_back: Won back | good",
      "show_if_question": "lost_deal", "show_if_equals": "yes"},
     {"options": [{"key": "acme", "label": "Acme Corp", "sentiment": "bad"},
                  {"key": "globex", "label": "Globex", "sentiment": "bad"},
                  {"key": "no_decision", "label": "No decision", "sentiment": "neutral"},
                  {"key": "won_back", "label": "Won back", "sentiment": "good"}], "pinned": False}),
    ({"key": "gaps", "question_type": "multi_choice", "prompt": "Which gaps hurt?",
      "options": "sso: SSO\nreporting: Reporting | a | b", "allow_other": "y"},
     {"options": [{"key": "sso", "label": "SSO", "sentiment": "neutral"},
                  {"key": "reporting", "label": "Reporting | a | b", "sentiment": "neutral"}],
      "allow_other": True, "pinned": False}),
    ({"key": "deals_lost", "question_type": "number", "prompt": "How many deals?", "min_value": "0",
      "max_value": "50", "unit": "deals", "whole_numbers": "y", "higher_is_better": "lower"},
     {"min": 0.0, "max": 50.0, "unit": "deals", "whole_numbers": True, "higher_is_better": False, "pinned": False}),
    ({"key": "anything_else", "question_type": "text", "prompt": "Anything else?", "max_length": "500",
      "required": "", "help": "Optional", "pinned": "y"},
     {"max_length": 500}),
]


def test_add_a_question_of_every_type(pm_client):
    question_set = make_set(pm_client)
    for fields, settings in ALL_TYPES:
        data = {k: v for k, v in fields.items() if v != ""}
        if fields.get("required") == "":
            data.pop("required", None)
            answer = post_form(pm_client, f"/question-sets/{question_set.id}",
                               f"/question-sets/{question_set.id}/questions", data)
        else:
            answer = add(pm_client, question_set, **data)
        assert answer.status_code == 302, answer.text
    db.session.expire_all()
    questions = db.session.scalars(select(Question).order_by(Question.position)).all()
    assert [(q.position, q.key, q.type) for q in questions] == [
        (1, "win_confidence", "scale"), (2, "recommend", "nps"), (3, "lost_deal", "yes_no"),
        (4, "lost_to", "single_choice"), (5, "gaps", "multi_choice"), (6, "deals_lost", "number"),
        (7, "anything_else", "text"),
    ]
    for question, (_, settings) in zip(questions, ALL_TYPES):
        assert question.settings == settings, question.key
    assert (questions[3].show_if_key, questions[3].show_if_value) == ("lost_deal", "yes")
    assert questions[6].required is False and questions[6].help == "Optional"
    assert all(q.required for q in questions[:6])

    page = pm_client.get(f"/question-sets/{question_set.id}")
    for key in ("win_confidence", "recommend", "lost_deal", "lost_to", "gaps", "deals_lost", "anything_else"):
        assert f"<code>{key}</code>" in page.text
    assert "shown if lost_deal = yes" in page.text
    # Later questions may depend on any earlier one, except free text (nothing to match).
    assert '<option value="deals_lost">' in page.text
    assert '<option value="anything_else">' not in page.text


def test_fields_of_other_types_are_ignored(pm_client):
    question_set = make_set(pm_client)
    answer = add(pm_client, question_set, key="lost_deal", question_type="yes_no", prompt="Lost?",
                 scale_max="7", options="a: A\nb: B", max_length="9")
    assert answer.status_code == 302
    assert db.session.scalar(select(Question)).settings == {"higher_is_better": True, "pinned": False}


def test_a_bad_question_shows_field_errors_keeps_input_and_stores_nothing(pm_client):
    question_set = make_set(pm_client)
    add(pm_client, question_set, key="lost_deal", question_type="yes_no", prompt="Lost?")
    answer = add(
        pm_client, question_set,
        key="Lost To", question_type="single_choice", prompt="Lost to <whom>?",
        options="acme: Acme\nacme: Acme again\nbad key: Bad",
        show_if_question="lost_deal", show_if_equals="maybe",
    )
    assert answer.status_code == 422
    assert field_errors(answer.text, "key")[0].startswith("Must be a slug")
    assert field_errors(answer.text, "options") == [
        "Line 2: Duplicate option key 'acme' (also option 1).",
        "Line 3: Must be a slug: a lowercase letter, then lowercase letters, digits or underscores (at most 64 characters).",
    ]
    assert field_errors(answer.text, "show_if_equals") == ['Must be "yes" or "no".']
    assert 'id="error-summary"' in answer.text
    # The input is kept, escaped.
    assert 'value="Lost To"' in answer.text
    assert "Lost to &lt;whom&gt;?" in answer.text
    assert "acme: Acme again" in answer.text
    assert '<option selected value="single_choice">' in answer.text
    assert '<option selected value="lost_deal">' in answer.text
    assert 'value="maybe"' in answer.text
    assert db.session.scalar(select(func.count(Question.id))) == 1


def test_text_that_is_not_a_number_is_reported_with_the_rest(pm_client):
    question_set = make_set(pm_client)
    answer = add(pm_client, question_set, key="ease", question_type="scale", prompt="", scale_max="seven")
    assert answer.status_code == 422
    assert field_errors(answer.text, "scale_max") == ["Enter a whole number."]
    assert field_errors(answer.text, "prompt") == ["Required."]
    assert db.session.scalar(select(func.count(Question.id))) == 0


def test_duplicate_keys_and_forward_references_are_refused(pm_client):
    question_set = make_set(pm_client)
    add(pm_client, question_set, key="lost_deal", question_type="yes_no", prompt="Lost?")
    answer = add(pm_client, question_set, key="lost_deal", question_type="nps", prompt="Again?")
    assert answer.status_code == 422
    assert field_errors(answer.text, "key") == ["The key 'lost_deal' is already used in this set."]
    answer = add(pm_client, question_set, key="why", question_type="text", prompt="Why?", show_if_equals="yes")
    assert field_errors(answer.text, "show_if_question") == ["Choose the question this answer belongs to."]
    answer = add(pm_client, question_set, key="why", question_type="text", prompt="Why?",
                 show_if_question="not_yet_asked", show_if_equals="yes")
    assert field_errors(answer.text, "show_if_question") == ["Must be the key of an earlier question."]


def test_remove_a_question(pm_client):
    question_set = make_set(pm_client)
    add(pm_client, question_set, key="lost_deal", question_type="yes_no", prompt="Lost?")
    add(pm_client, question_set, key="why", question_type="text", prompt="Why?",
        show_if_question="lost_deal", show_if_equals="yes")
    url = f"/question-sets/{question_set.id}"

    refused = post_form(pm_client, url, f"{url}/questions/lost_deal/remove", {})
    assert refused.status_code == 302
    assert "change or remove it first" in html.unescape(pm_client.get(url).text)
    assert db.session.scalar(select(func.count(Question.id))) == 2

    assert post_form(pm_client, url, f"{url}/questions/why/remove", {}).status_code == 302
    assert post_form(pm_client, url, f"{url}/questions/lost_deal/remove", {}).status_code == 302
    assert db.session.scalar(select(func.count(Question.id))) == 0


def test_publish_then_edit_starts_the_next_draft(pm_client):
    question_set = make_set(pm_client)
    url = f"/question-sets/{question_set.id}"
    empty = post_form(pm_client, url, f"{url}/publish", {})
    assert empty.status_code == 302
    assert "has no questions yet" in pm_client.get(url).text

    add(pm_client, question_set, key="lost_deal", question_type="yes_no", prompt="Lost?")
    assert post_form(pm_client, url, f"{url}/publish", {}).status_code == 302
    db.session.expire_all()
    assert [(v.number, v.status) for v in question_set.versions] == [(1, "published")]
    page = pm_client.get(url)
    assert "Questions in published version 1" in page.text
    assert "Publish version" not in page.text

    add(pm_client, question_set, key="why", question_type="text", prompt="Why?")
    db.session.expire_all()
    assert [(v.number, v.status) for v in question_set.versions] == [(1, "published"), (2, "draft")]
    assert [q.key for q in question_set.versions[0].questions] == ["lost_deal"]
    assert [q.key for q in question_set.versions[1].questions] == ["lost_deal", "why"]
    assert "Questions in draft version 2" in pm_client.get(url).text


def test_forms_need_the_csrf_token(pm_client):
    question_set = make_set(pm_client)
    url = f"/question-sets/{question_set.id}"
    add(pm_client, question_set, key="lost_deal", question_type="yes_no", prompt="Lost?")
    assert pm_client.post(f"{url}/publish").status_code == 400
    assert pm_client.post(f"{url}/questions/lost_deal/remove").status_code == 400
    assert pm_client.post(f"{url}/questions", data={"key": "x", "question_type": "yes_no", "prompt": "X"}).status_code == 400
    assert pm_client.post("/question-sets/new", data={"name": "No token", "min_group_size": "5"}).status_code == 400
    db.session.expire_all()
    assert question_set.versions[0].status == "draft"
    assert db.session.scalar(select(func.count(Question.id))) == 1
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 1


def test_admins_may_design_too(signed_in_client):
    client = signed_in_client(roles=("admin",), email="admin@example.com")
    assert client.get("/question-sets/").status_code == 200


def test_unknown_set_is_404(pm_client):
    assert pm_client.get("/question-sets/999").status_code == 404


def test_leaders_may_not_design(signed_in_client, make_person, app):
    owner = make_person(email="owner@example.com", roles=("pm",))
    question_set = create_question_set(owner, {"name": "Pulse"}, require_questions=False)
    db.session.commit()
    client = signed_in_client(roles=("leader",), email="leader@example.com")
    url = f"/question-sets/{question_set.id}"
    for path in ("/question-sets/", "/question-sets/new", url):
        assert client.get(path).status_code == 403, path
    # Even with a valid CSRF token (the 403 page carries the sign-out form's).
    token = csrf_token_from(client.get("/question-sets/").text)
    for path in (f"{url}/publish", f"{url}/questions", "/question-sets/new"):
        answer = client.post(path, data={"csrf_token": token, "key": "x", "question_type": "yes_no", "prompt": "X",
                                         "name": "Leader set", "min_group_size": "5"})
        assert answer.status_code == 403, path
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 1
    assert db.session.scalar(select(func.count(Question.id))) == 0


def test_signed_out_visitors_are_sent_to_sign_in(client, app, make_person):
    owner = make_person(email="owner@example.com", roles=("pm",))
    question_set = create_question_set(owner, {"name": "Pulse"}, require_questions=False)
    publish_target = f"/question-sets/{question_set.id}/publish"
    db.session.commit()
    for path in ("/question-sets/", f"/question-sets/{question_set.id}"):
        answer = client.get(path)
        assert answer.status_code == 302 and "/sign-in" in answer.headers["Location"]
    answer = client.post(publish_target)
    assert answer.status_code in (302, 400)
    db.session.expire_all()
    assert db.session.get(QuestionSet, question_set.id).versions[0].status == "draft"


# -- Templates, import and export ------------------------------------------------------


def test_the_empty_state_offers_the_starter_templates_and_copies_one(pm_client):
    from surveys.starter_templates import TEMPLATES

    page = pm_client.get("/question-sets/")
    assert "Start from a template" in page.text
    for template in TEMPLATES:
        assert f'action="/question-sets/templates/{template.slug}"' in page.text
    answer = post_form(pm_client, "/question-sets/", "/question-sets/templates/win-loss-pulse", {})
    assert answer.status_code == 302
    question_set = db.session.scalar(select(QuestionSet))
    assert answer.headers["Location"].endswith(f"/question-sets/{question_set.id}")
    assert question_set.name == "Monthly win/loss pulse"
    assert question_set.owner.email == "staff@example.com"
    assert [(v.number, v.status) for v in question_set.versions] == [(1, "draft")]
    keys = [q.key for q in question_set.draft.questions]
    assert "lost_deal" in keys and "main_loss_reason" in keys
    # The index still offers them once sets exist.
    assert "/question-sets/templates/feature-gaps" in pm_client.get("/question-sets/").text
    assert post_form(pm_client, "/question-sets/", "/question-sets/templates/no-such-template", {}).status_code == 404


def test_export_then_import_makes_an_identical_new_draft(pm_client):
    question_set = make_set(pm_client, confidentiality="attributed", min_group_size="4")
    for fields, _ in ALL_TYPES[:6]:
        add(pm_client, question_set, **fields)
    download = pm_client.get(f"/question-sets/{question_set.id}/export.json")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == 'attachment; filename="monthly-win-loss-pulse.json"'
    exported = download.json
    assert exported["confidentiality"] == "attributed" and exported["min_group_size"] == 4
    assert [q["key"] for q in exported["questions"]][:3] == ["win_confidence", "recommend", "lost_deal"]

    page = pm_client.get("/question-sets/")
    answer = pm_client.post(
        "/question-sets/import",
        data={"csrf_token": csrf_token_from(page.text), "file": (io.BytesIO(download.data), "set.json")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302, answer.text
    imported = db.session.scalar(select(QuestionSet).order_by(QuestionSet.id.desc()))
    assert imported.id != question_set.id
    from surveys.questions.shapes import export_question_set

    assert export_question_set(imported) == exported


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "is not valid JSON"),
        (b'{"name": "X", "questions": [{"key": "Bad Key", "type": "yes_no", "prompt": "P"}]}', "questions[0].key"),
        (b"[1, 2]", "must be an object"),
    ],
)
def test_a_bad_import_says_why_and_imports_nothing(pm_client, content, message):
    page = pm_client.get("/question-sets/")
    answer = pm_client.post(
        "/question-sets/import",
        data={"csrf_token": csrf_token_from(page.text), "file": (io.BytesIO(content), "set.json")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 422
    assert message in html.unescape(answer.text)
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 0


# -- Editing questions ------------------------------------------------------------------


def set_with(pm_client, *questions):
    question_set = make_set(pm_client)
    for fields in questions:
        assert add(pm_client, question_set, **fields).status_code == 302
    return question_set


LOST = {"key": "lost_deal", "question_type": "yes_no", "prompt": "Did you lose a deal?"}
LOST_TO = {"key": "lost_to", "question_type": "single_choice", "prompt": "Lost to whom?",
           "options": "acme: Acme\nglobex: Globex", "show_if_question": "lost_deal", "show_if_equals": "yes"}
CONFIDENCE = {"key": "confidence", "question_type": "scale", "prompt": "How confident?"}


def keys_in_order(question_set):
    db.session.expire_all()
    version = question_set.draft or question_set.versions[-1]
    return [q.key for q in version.questions]


def test_a_key_is_suggested_from_the_prompt_when_left_empty(pm_client):
    question_set = set_with(pm_client, {"key": "", "question_type": "yes_no", "prompt": "Did you lose a deal this month?"})
    assert keys_in_order(question_set) == ["lose_deal_month"]
    add(pm_client, question_set, key="", question_type="yes_no", prompt="Did you lose a deal this month?")
    assert keys_in_order(question_set) == ["lose_deal_month", "lose_deal_month_2"]


def test_edit_a_draft_question_and_rename_its_key_before_the_first_publish(pm_client):
    question_set = set_with(pm_client, LOST, LOST_TO)
    url = f"/question-sets/{question_set.id}/questions/lost_deal/edit"
    page = pm_client.get(url)
    assert page.status_code == 200
    assert 'value="lost_deal"' in page.text and "readonly" not in page.text
    answer = post_form(pm_client, url, url, {"key": "lost_any_deal", "question_type": "yes_no",
                                             "prompt": "Did you lose any deal?", "help": "This month", "required": "y"})
    assert answer.status_code == 302, answer.text
    db.session.expire_all()
    first, second = question_set.draft.questions
    assert (first.key, first.prompt, first.help) == ("lost_any_deal", "Did you lose any deal?", "This month")
    # The dependent question follows the new key.
    assert (second.show_if_key, second.show_if_value) == ("lost_any_deal", "yes")

    # Options keep their keys while their labels change.
    url = f"/question-sets/{question_set.id}/questions/lost_to/edit"
    assert "acme: Acme\nglobex: Globex" in html.unescape(pm_client.get(url).text)
    answer = post_form(pm_client, url, url, {**LOST_TO, "options": "acme: Acme Corporation\nglobex: Globex Inc",
                                             "show_if_question": "lost_any_deal", "required": "y"})
    assert answer.status_code == 302, answer.text
    db.session.expire_all()
    assert question_set.draft.questions[1].options == [
        {"key": "acme", "label": "Acme Corporation", "sentiment": "neutral"},
        {"key": "globex", "label": "Globex Inc", "sentiment": "neutral"},
    ]


def test_an_edit_that_breaks_a_dependent_question_is_refused_clearly(pm_client):
    question_set = set_with(pm_client, LOST, LOST_TO)
    url = f"/question-sets/{question_set.id}/questions/lost_deal/edit"
    answer = post_form(pm_client, url, url, {"key": "lost_deal", "question_type": "scale", "prompt": "Lost?", "required": "y"})
    assert answer.status_code == 422
    assert "Question &#39;lost_to&#39;" in answer.text or "Question 'lost_to'" in answer.text
    db.session.expire_all()
    assert question_set.draft.questions[0].type == "yes_no"


def test_keys_are_fixed_after_the_first_publish(pm_client):
    question_set = set_with(pm_client, LOST)
    base = f"/question-sets/{question_set.id}"
    post_form(pm_client, base, f"{base}/publish", {})
    url = f"{base}/questions/lost_deal/edit"
    page = pm_client.get(url)
    assert "readonly" in page.text and "Keys are fixed once the set has been published" in page.text
    answer = post_form(pm_client, url, url, {"key": "renamed", "question_type": "yes_no", "prompt": "Reworded?", "required": "y"})
    assert answer.status_code == 302
    db.session.expire_all()
    assert [(v.number, v.status) for v in question_set.versions] == [(1, "published"), (2, "draft")]
    assert [(q.key, q.prompt) for q in question_set.versions[1].questions] == [("lost_deal", "Reworded?")]
    assert question_set.versions[0].questions[0].prompt == "Did you lose a deal?"


def test_move_up_and_down_and_refuse_moving_above_a_dependency(pm_client):
    question_set = set_with(pm_client, CONFIDENCE, LOST, LOST_TO)
    base = f"/question-sets/{question_set.id}"
    assert post_form(pm_client, base, f"{base}/questions/confidence/move", {"direction": "down"}).status_code == 302
    assert keys_in_order(question_set) == ["lost_deal", "confidence", "lost_to"]
    post_form(pm_client, base, f"{base}/questions/lost_to/move", {"direction": "up"})
    assert keys_in_order(question_set) == ["lost_deal", "lost_to", "confidence"]
    post_form(pm_client, base, f"{base}/questions/lost_to/move", {"direction": "up"})
    assert keys_in_order(question_set) == ["lost_deal", "lost_to", "confidence"]
    page = html.unescape(pm_client.get(base).text)
    assert "Not moved: 'lost_to' is shown only depending on 'lost_deal', so it must stay below it." in page
    assert post_form(pm_client, base, f"{base}/questions/lost_to/move", {"direction": "sideways"}).status_code == 400


def test_reorder_all_at_once_as_drag_and_drop_sends_it(pm_client):
    question_set = set_with(pm_client, CONFIDENCE, LOST, LOST_TO)
    base = f"/question-sets/{question_set.id}"
    page = pm_client.get(base)
    token = csrf_token_from(page.text)
    answer = pm_client.post(f"{base}/questions/order", data={"csrf_token": token, "order": ["lost_deal", "lost_to", "confidence"]})
    assert answer.status_code == 302
    assert keys_in_order(question_set) == ["lost_deal", "lost_to", "confidence"]
    pm_client.post(f"{base}/questions/order", data={"csrf_token": token, "order": ["lost_to", "lost_deal", "confidence"]})
    assert keys_in_order(question_set) == ["lost_deal", "lost_to", "confidence"]
    assert "must stay below it" in html.unescape(pm_client.get(base).text)
    pm_client.post(f"{base}/questions/order", data={"csrf_token": token, "order": ["lost_deal"]})
    assert "Give every question" in html.unescape(pm_client.get(base).text)


def test_duplicate_a_question(pm_client):
    question_set = set_with(pm_client, LOST, LOST_TO, CONFIDENCE)
    base = f"/question-sets/{question_set.id}"
    answer = post_form(pm_client, base, f"{base}/questions/lost_to/duplicate", {})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"{base}/questions/lost_to_copy/edit")
    assert keys_in_order(question_set) == ["lost_deal", "lost_to", "lost_to_copy", "confidence"]
    copy = question_set.draft.questions[2]
    assert (copy.show_if_key, copy.options) == ("lost_deal", question_set.draft.questions[1].options)
    post_form(pm_client, base, f"{base}/questions/lost_to/duplicate", {})
    assert "lost_to_copy_2" in keys_in_order(question_set)


# -- Preview ---------------------------------------------------------------------------


def test_preview_shows_the_rep_form_and_stores_nothing(pm_client):
    from surveys.models import Answer, Response

    question_set = set_with(pm_client, CONFIDENCE, LOST, LOST_TO)
    url = f"/question-sets/{question_set.id}/preview"
    page = pm_client.get(url)
    assert page.status_code == 200
    assert 'class="phone-frame"' in page.text and 'class="rep-form"' in page.text
    assert "Confidential." in page.text and "about 1 minute" in page.text
    assert 'data-show-if-key="lost_deal"' in page.text
    token = csrf_token_from(page.text)
    invalid = pm_client.post(url + "?version=1", data={"csrf_token": token, "lost_deal": "yes"})
    assert invalid.status_code == 422
    assert 'id="error-summary"' in invalid.text
    assert "Choose a value on the scale." in invalid.text and "Choose one option." in invalid.text
    valid = pm_client.post(url + "?version=1", data={"csrf_token": token, "confidence": "4", "lost_deal": "no",
                                                     "lost_to": "acme"})
    assert valid.status_code == 200
    assert "These answers are valid (2 stored values would be kept" in valid.text
    assert "Nothing was stored" in valid.text
    assert db.session.scalar(select(func.count(Response.id))) == 0
    assert db.session.scalar(select(func.count(Answer.id))) == 0
    tampered = pm_client.post(url, data={"csrf_token": token, "confidence": "4", "admin": "1"})
    assert tampered.status_code == 400


# -- Settings ----------------------------------------------------------------------------


def test_settings_change_and_explain_the_stricter_only_rule(pm_client):
    from tests.surveys.questions.test_question_sets import record_an_answer

    question_set = set_with(pm_client, LOST)
    url = f"/question-sets/{question_set.id}/settings"
    page = pm_client.get(url)
    assert "Nobody has answered this set yet" in page.text
    fields = {"name": "Renamed", "description": "", "confidentiality": "attributed", "min_group_size": "3",
              "comment_min_group_size": "8", "hold_until_close": "y"}
    assert post_form(pm_client, url, url, fields).status_code == 302
    db.session.expire_all()
    assert (question_set.name, question_set.confidentiality, question_set.min_group_size,
            question_set.comment_min_group_size, question_set.hold_until_close) == ("Renamed", "attributed", 3, 8, True)

    base = f"/question-sets/{question_set.id}"
    post_form(pm_client, base, f"{base}/publish", {})
    db.session.expire_all()
    record_an_answer(question_set, question_set.versions[0])
    page = pm_client.get(url)
    assert "can only become stricter" in page.text
    refused = post_form(pm_client, url, url, {**fields, "min_group_size": "3", "comment_min_group_size": "7",
                                              "hold_until_close": ""})
    assert refused.status_code == 422
    assert field_errors(refused.text, "comment_min_group_size") == [
        "Cannot go below 8: answers already exist, so this can only become stricter."
    ]
    assert field_errors(refused.text, "hold_until_close") == [
        "Cannot be turned off: answers already exist, so this can only become stricter."
    ]
    db.session.expire_all()
    assert question_set.comment_min_group_size == 8 and question_set.hold_until_close is True
    assert post_form(pm_client, url, url, {**fields, "confidentiality": "confidential", "min_group_size": "5"}).status_code == 302
    db.session.expire_all()
    assert (question_set.confidentiality, question_set.min_group_size) == ("confidential", 5)


# -- Versions: diff and confirmation -------------------------------------------------------


def test_a_breaking_change_shows_in_the_diff_and_needs_confirming(pm_client):
    question_set = set_with(pm_client, CONFIDENCE, LOST, LOST_TO)
    base = f"/question-sets/{question_set.id}"
    post_form(pm_client, base, f"{base}/publish", {})
    edit_url = f"{base}/questions/confidence/edit"
    post_form(pm_client, edit_url, edit_url, {**CONFIDENCE, "scale_max": "7", "required": "y"})
    edit_url = f"{base}/questions/lost_to/edit"
    post_form(pm_client, edit_url, edit_url, {**LOST_TO, "prompt": "Who won the deal?", "required": "y"})
    add(pm_client, question_set, key="notes", question_type="text", prompt="Anything else?")
    post_form(pm_client, base, f"{base}/questions/lost_deal/remove", {})  # refused: lost_to depends on it

    page = pm_client.get(base)
    assert "1 question changes what it measures" in page.text
    diff = pm_client.get(f"{base}/versions/2/diff")
    assert diff.status_code == 200
    text = html.unescape(diff.text)
    assert "Measure changed: the trend breaks here" in text and "Scale changed from 1–5 to 1–7." in text
    assert "Wording only: the trend continues" in text and "Who won the deal?" in text
    assert "Added" in text and "<code>notes</code>" in text
    assert pm_client.get(f"{base}/versions/9/diff").status_code == 404

    refused = post_form(pm_client, base, f"{base}/publish", {})
    assert refused.status_code == 409
    assert "Publishing version 2 breaks 1 trend" in refused.text
    assert "<code>confidence</code>" in refused.text and "<code>lost_to</code>" not in refused.text
    db.session.expire_all()
    assert question_set.versions[1].status == "draft"
    confirmed = post_form(pm_client, base, f"{base}/publish", {"confirm_breaking": "yes"})
    assert confirmed.status_code == 302
    db.session.expire_all()
    assert [(v.number, v.status) for v in question_set.versions] == [(1, "published"), (2, "published")]
    assert question_set.versions[0].questions[0].settings["scale_max"] == 5


def test_a_wording_only_change_publishes_without_confirmation(pm_client):
    question_set = set_with(pm_client, CONFIDENCE)
    base = f"/question-sets/{question_set.id}"
    post_form(pm_client, base, f"{base}/publish", {})
    edit_url = f"{base}/questions/confidence/edit"
    post_form(pm_client, edit_url, edit_url, {**CONFIDENCE, "prompt": "How sure are you?", "required": "y"})
    assert post_form(pm_client, base, f"{base}/publish", {}).status_code == 302
    db.session.expire_all()
    assert [v.status for v in question_set.versions] == ["published", "published"]


def test_new_routes_need_a_designer(signed_in_client, make_person, app):
    owner = make_person(email="owner@example.com", roles=("pm",))
    question_set = create_question_set(owner, {"name": "Pulse", "questions": [
        {"key": "lost_deal", "type": "yes_no", "prompt": "Lost?"}]})
    db.session.commit()
    client = signed_in_client(roles=("leader",), email="leader@example.com")
    base = f"/question-sets/{question_set.id}"
    for path in (f"{base}/preview", f"{base}/settings", f"{base}/export.json", f"{base}/versions/1/diff",
                 f"{base}/questions/lost_deal/edit"):
        assert client.get(path).status_code == 403, path
    token = csrf_token_from(client.get("/question-sets/").text)
    for path in (f"{base}/questions/lost_deal/move", f"{base}/questions/lost_deal/duplicate", f"{base}/questions/order",
                 "/question-sets/templates/win-loss-pulse", "/question-sets/import", f"{base}/settings"):
        assert client.post(path, data={"csrf_token": token, "direction": "up"}).status_code == 403, path
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 1


def summary_targets(page_html):
    """The fields the error summary at the top links to, in order."""
    summary = re.search(r'<div class="error-summary".*?</div>', page_html, re.S)
    assert summary, "no error summary on the page"
    return re.findall(r'<a href="#([^"]+)">', summary.group(0))


def test_set_settings_and_a_new_set_report_every_error_in_one_pass(pm_client):
    """A blank group size used to hide the other faults until it was fixed (issue 14)."""
    question_set = set_with(pm_client, LOST)
    url = f"/question-sets/{question_set.id}/settings"
    fields = {"name": "", "description": "", "confidentiality": "confidential", "min_group_size": "",
              "comment_min_group_size": "1"}
    refused = post_form(pm_client, url, url, fields)
    assert refused.status_code == 422
    assert summary_targets(refused.text) == ["name", "min_group_size", "comment_min_group_size"]
    assert refused.text.index('id="error-summary"') < refused.text.index("Nobody has answered this set yet")
    assert 'value="1"' in refused.text  # kept
    db.session.expire_all()
    assert question_set.name == "Monthly win/loss pulse" and question_set.comment_min_group_size == 10

    created = post_form(pm_client, "/question-sets/new", "/question-sets/new",
                        {"name": "", "description": "", "confidentiality": "confidential", "min_group_size": "x"})
    assert created.status_code == 422
    assert summary_targets(created.text) == ["name", "min_group_size"]
    assert db.session.scalar(select(func.count(QuestionSet.id))) == 1


def test_the_designer_summarizes_an_added_questions_errors_at_the_top(pm_client):
    question_set = make_set(pm_client)
    refused = add(pm_client, question_set, question_type="single_choice", prompt="", options="")
    assert refused.status_code == 422
    page = refused.text
    assert page.index('id="error-summary"') < page.index('id="versions"')  # at the top, not by the form
    assert page.count('id="error-summary"') == 1
    assert {"prompt", "options"} <= set(summary_targets(page))
