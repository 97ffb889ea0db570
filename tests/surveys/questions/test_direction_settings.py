"""Direction of good, option sentiment, pins and whole numbers (issue 14):
through the API and the designer, kept across versions, and never a change
of measure."""

import html
import re

from surveys.extensions import db
from surveys.models import QuestionSet
from surveys.version_diff import WORDING, diff_versions
from tests.surveys.questions.test_designer_views import add, make_set, post_form

LOST_TO = {
    "key": "lost_to", "type": "single_choice", "prompt": "Who did you lose to?",
    "options": [{"key": "globex", "label": "Globex", "sentiment": "bad"},
                {"key": "no_decision", "label": "No decision"},
                {"key": "won_back", "label": "Won back later", "sentiment": "good"}],
    "pinned": True,
}
DEALS = {"key": "deals_lost", "type": "number", "prompt": "How many deals did you lose?", "min": 0, "max": 50,
         "unit": "deals", "whole_numbers": True, "higher_is_better": False}
CONFIDENCE = {"key": "confidence", "type": "scale", "prompt": "How confident are you?"}
SET = {"name": "Losses", "confidentiality": "attributed", "questions": [CONFIDENCE, LOST_TO, DEALS]}


def test_direction_pins_and_whole_numbers_round_trip_through_the_api_and_survive_a_new_version(client, api_token):
    headers = api_token(roles=("pm",))
    created = client.post("/api/v1/question-sets", json=SET, headers=headers)
    assert created.status_code == 201, created.json
    set_id = created.json["id"]
    confidence, lost_to, deals = created.json["versions"][0]["questions"]
    # Defaults are read back: higher is better, not pinned, options neutral.
    assert (confidence["higher_is_better"], confidence["pinned"]) == (True, False)
    assert lost_to["options"] == [{"key": "globex", "label": "Globex", "sentiment": "bad"},
                                  {"key": "no_decision", "label": "No decision", "sentiment": "neutral"},
                                  {"key": "won_back", "label": "Won back later", "sentiment": "good"}]
    assert lost_to["pinned"] is True and "higher_is_better" not in lost_to
    assert (deals["whole_numbers"], deals["higher_is_better"], deals["pinned"]) == (True, False, False)
    assert client.post(f"/api/v1/question-sets/{set_id}/publish", headers=headers).status_code == 200

    # Turning the direction round, unpinning and re-reading an option is not a
    # change of measure: it publishes without confirming a break.
    flipped = [{**CONFIDENCE, "higher_is_better": False},
               {**LOST_TO, "pinned": False, "options": [{**LOST_TO["options"][0], "sentiment": "neutral"},
                                                        *LOST_TO["options"][1:]]},
               DEALS]
    assert client.put(f"/api/v1/question-sets/{set_id}/draft", json={"questions": flipped},
                      headers=headers).status_code == 200
    published = client.post(f"/api/v1/question-sets/{set_id}/publish", headers=headers)
    assert published.status_code == 200, published.json
    versions = client.get(f"/api/v1/question-sets/{set_id}", headers=headers).json["versions"]
    first, second = versions[0]["questions"], versions[1]["questions"]
    assert first[0]["higher_is_better"] is True and second[0]["higher_is_better"] is False
    assert second[1]["pinned"] is False and second[1]["options"][0]["sentiment"] == "neutral"
    assert second[2] == deals  # untouched settings carried into the new version

    changes = {change.key: change for change in diff_versions(*_versions(set_id))}
    assert changes["confidence"].kind == WORDING and "Now lower is better." in changes["confidence"].details
    assert changes["lost_to"].kind == WORDING
    assert set(changes["lost_to"].details) == {"No longer pinned as a key metric.",
                                               "Option globex is now neutral news (it was bad)."}
    assert "deals_lost" not in changes


def _versions(set_id):
    versions = db.session.get(QuestionSet, set_id).versions
    return versions[0], versions[1]


def test_the_api_refuses_fractions_for_a_whole_numbers_question(client, api_token):
    bad = {**SET, "questions": [DEALS, {**DEALS, "key": "deals_won", "max": 2.5},
                                {"key": "why", "type": "text", "prompt": "Why?",
                                 "show_if": {"question": "deals_lost", "equals": 1.5}}]}
    headers = api_token(roles=("pm",))
    answer = client.post("/api/v1/question-sets", json=bad, headers=headers)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert answer.json["errors"] == {
        "questions[1].max": "Must be a whole number: this question takes whole numbers only.",
        "questions[2].show_if.equals": "Must be a whole number from 0 to 50.",
    }
    wrong_kind = {**SET, "questions": [{**CONFIDENCE, "whole_numbers": True},
                                       {**LOST_TO, "higher_is_better": True},
                                       {**LOST_TO, "key": "other_loss", "options": [
                                           {"key": "a", "label": "A", "sentiment": "awful"}, {"key": "b", "label": "B"}]}]}
    answer = client.post("/api/v1/question-sets", json=wrong_kind, headers=headers)
    assert answer.status_code == 422
    assert set(answer.json["errors"]) == {"questions[0].whole_numbers", "questions[1].higher_is_better",
                                          "questions[2].options[0].sentiment"}


def test_direction_pins_and_whole_numbers_round_trip_through_the_designer(signed_in_client):
    pm_client = signed_in_client(roles=("pm",))
    question_set = make_set(pm_client)
    answer = add(pm_client, question_set, key="lost_to", question_type="single_choice", prompt="Lost to whom?",
                 options="globex: Globex | bad\nno_decision: No decision\nwon_back: Won back | good", pinned="y")
    assert answer.status_code == 302, answer.text
    answer = add(pm_client, question_set, key="deals_lost", question_type="number", prompt="Deals lost?",
                 min_value="0", unit="deals", whole_numbers="y", higher_is_better="lower")
    assert answer.status_code == 302, answer.text
    base = f"/question-sets/{question_set.id}"
    listing = html.unescape(pm_client.get(base).text)
    assert "Globex (globex, bad news)" in listing and "lower is better" in listing and "whole numbers" in listing

    # The edit form shows each setting as stored, and posting it back unchanged keeps it.
    for key in ("lost_to", "deals_lost"):
        url = f"{base}/questions/{key}/edit"
        page = html.unescape(pm_client.get(url).text)
        fields = _form_fields(page)
        if key == "lost_to":
            assert fields["options"] == "globex: Globex | bad\nno_decision: No decision\nwon_back: Won back | good"
            assert fields["pinned"] == "y"
        else:
            assert fields["higher_is_better"] == "lower" and fields["whole_numbers"] == "y"
            assert "pinned" not in fields
        assert post_form(pm_client, url, url, fields).status_code == 302
    db.session.expire_all()
    lost_to, deals = question_set.draft.questions
    assert lost_to.settings["options"][0]["sentiment"] == "bad" and lost_to.settings["pinned"] is True
    assert [o["sentiment"] for o in lost_to.settings["options"]] == ["bad", "neutral", "good"]
    assert deals.settings["higher_is_better"] is False and deals.settings["whole_numbers"] is True

    # A fractional bound on a whole-numbers question is a field error, input kept.
    url = f"{base}/questions/deals_lost/edit"
    refused = post_form(pm_client, url, url, {**_form_fields(html.unescape(pm_client.get(url).text)), "max_value": "2.5"})
    assert refused.status_code == 422
    assert "Must be a whole number: this question takes whole numbers only." in html.unescape(refused.text)
    assert 'value="2.5"' in refused.text


def _form_fields(page):
    """The values a browser would post from the question form (checked boxes, selected options)."""
    form = re.search(r'<form[^>]*class="[^"]*question-form[^"]*".*?</form>', page, re.S).group(0)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrf_token":
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        if kind and kind.group(1) == "checkbox":
            if "checked" in tag:
                fields[name.group(1)] = "y"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[name] = body.strip("\r\n").replace("\r\n", "\n")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|<option[^>]*value="([^"]*)"[^>]*selected', body)
        if chosen:
            fields[name] = chosen.group(1) or chosen.group(2)
    return fields
