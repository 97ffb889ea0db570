"""The free text of a multi-choice "Other" answer is a comment: listed with
the round's comments, under the same rules (issue 14)."""

import re

import pytest

from surveys.scorecard.comments import CommentsWithheld, comments
from tests.builders.scorecards import ScorecardData

GAPS = {"key": "gaps", "type": "multi_choice", "required": False,
        "settings": {"options": [{"key": "sso", "label": "SSO"}, {"key": "api", "label": "API"}], "allow_other": True}}
QUESTIONS = [{"key": "score", "type": "scale"}, GAPS, {"key": "why", "type": "text", "required": False}]


def _listed(html):
    return [re.sub(r"\s+", " ", text).strip() for text in re.findall(r"<blockquote>(.*?)</blockquote>", html, re.S)]


def test_other_texts_are_listed_among_an_attributed_rounds_comments(app, signed_in_client):
    data = ScorecardData(confidentiality="attributed")
    round_ = data.round("2026-01", data.version(QUESTIONS), 0)
    data.respond(round_, data.person(name="Ana"), {"score": 4, "gaps": ["sso", ("other", "Needs SAML groups")],
                                                   "why": "Pricing"})
    data.respond(round_, data.person(name="Ben"), {"score": 3, "gaps": ["api"]})
    data.respond(round_, data.person(name="Cy"), {"score": 2, "gaps": [("other", "Offline mode")]})
    data.commit()
    listed = comments(round_)
    assert [(item["question_key"], item["text"], item["name"]) for item in listed["items"]] == [
        ("gaps", "Needs SAML groups", "Ana"), ("why", "Pricing", "Ana"), ("gaps", "Offline mode", "Cy")]
    assert {item["prompt"] for item in listed["items"] if item["question_key"] == "gaps"} == {"Gaps? (Other)"}
    assert [item["text"] for item in comments(round_, "gaps")["items"]] == ["Needs SAML groups", "Offline mode"]
    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    page = leader.get(f"/scorecards/rounds/{round_.id}/comments")
    assert page.status_code == 200
    assert _listed(page.text) == ["Needs SAML groups", "Pricing", "Offline mode"]
    assert '<option value="gaps"' in page.text
    only = leader.get(f"/scorecards/rounds/{round_.id}/comments?question=gaps")
    assert only.status_code == 200 and _listed(only.text) == ["Needs SAML groups", "Offline mode"]


def _confidential(writers, comment_min=6, hold=False, status="closed"):
    """A confidential round of 12 respondents, `writers` of whom typed an "other" text."""
    data = ScorecardData(confidentiality="confidential", min_group_size=5, hold_until_close=hold)
    data.question_set.comment_min_group_size = comment_min
    round_ = data.round("2026-01", data.version(QUESTIONS), 0, status=status)
    for index in range(12):
        gaps = ["sso", ("other", f"other text {index}")] if index < writers else ["api"]
        data.respond(round_, data.person(team="Sales"), {"score": 3, "gaps": gaps, "why": f"why {index}"})
    data.commit()
    return round_


def test_a_confidential_rounds_other_texts_are_listed_without_names_above_the_threshold(app):
    round_ = _confidential(writers=7)
    listed = comments(round_, "gaps")
    assert not listed["attributed"]
    assert sorted(item["text"] for item in listed["items"]) == [f"other text {i}" for i in range(7)]
    assert all(set(item) == {"question_key", "prompt", "text"} for item in listed["items"])


def test_other_texts_under_the_comment_threshold_or_held_are_never_listed(app, signed_in_client):
    small = _confidential(writers=5)  # 12 answered the question, 5 wrote an "other" text: under 6
    with pytest.raises(CommentsWithheld):
        comments(small, "gaps")
    everything = comments(small)  # the text question's 12 writers are listed, the 5 "Other" texts are not
    assert everything["questions"] == ["why"] and len(everything["items"]) == 12
    assert all(not item["text"].startswith("other text") for item in everything["items"])
    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    for query in ("", "?question=gaps", "?slice=team:Sales", "?question=gaps&slice=team:Sales"):
        page = leader.get(f"/scorecards/rounds/{small.id}/comments{query}")
        assert page.status_code == 200 and "other text" not in page.text, query
    from tests.conftest import empty_all_tables

    empty_all_tables()
    held = _confidential(writers=8, hold=True, status="open")
    with pytest.raises(CommentsWithheld):
        comments(held, "gaps")


# -- Grouping, search and replying from a comment -----------------------------------


def test_identical_and_near_identical_comments_are_grouped_with_a_count(app):
    from surveys.scorecard.comments import group_comments

    def item(text, key="why"):
        return {"question_key": key, "prompt": key.title(), "text": text}

    groups = group_comments([
        item("Pricing is too high for SMB deals"), item("SSO"), item("pricing is too high for SMB deals!"),
        item("Pricing is too high for SMB deal"), item("sso"), item("Lost the Q3 renewal to Globex"),
        item("Lost the Q4 renewal to Globex"), item("API"), item("Pricing is too high for SMB deals", key="gaps"),
    ])
    assert [(g["question_key"], g["text"], g["count"]) for g in groups] == [
        ("why", "Pricing is too high for SMB deals", 3),
        ("why", "SSO", 2),
        ("why", "Lost the Q3 renewal to Globex", 1),  # different numbers are different points
        ("why", "Lost the Q4 renewal to Globex", 1),
        ("why", "API", 1),  # short texts group only when identical
        ("gaps", "Pricing is too high for SMB deals", 1),  # never across questions
    ]  # the most repeated first, then in the list's own order
    assert groups[0]["variants"] == ["pricing is too high for SMB deals!", "Pricing is too high for SMB deal"]
    assert groups[1]["variants"] == ["sso"]


def test_the_comments_page_groups_searches_and_lets_a_pm_reply_from_a_comment(app, signed_in_client):
    from sqlalchemy import select

    from surveys.extensions import db
    from surveys.feedback import Reply
    from tests.conftest import csrf_token_from

    data = ScorecardData(confidentiality="attributed")
    round_ = data.round("2026-01", data.version(QUESTIONS), 0)
    for name, why in [("Ana", "Pricing is too high for SMB"), ("Ben", "pricing is too high for SMB!"),
                      ("Cy", "Onboarding takes <b>weeks</b>"), ("Di", "Pricing is too high for SMB")]:
        data.respond(round_, data.person(name=name), {"score": 3, "gaps": ["api"], "why": why})
    data.commit()
    pm = signed_in_client(roles=("pm",), email="pm@example.com")
    page = pm.get(f"/scorecards/rounds/{round_.id}/comments")
    assert _listed(page.text) == ["Pricing is too high for SMB", "Onboarding takes &lt;b&gt;weeks&lt;/b&gt;"]
    assert "4 comments in 2 groups" in page.text and "3 people wrote this" in page.text
    assert "Ana" in page.text and "Ben" in page.text and "Di" in page.text

    found = pm.get(f"/scorecards/rounds/{round_.id}/comments?q=ONBOARD")
    assert _listed(found.text) == ["Onboarding takes &lt;b&gt;weeks&lt;/b&gt;"]
    assert _listed(pm.get(f"/scorecards/rounds/{round_.id}/comments?q=%25").text) == []  # % is a character
    assert "No comment here contains" in pm.get(f"/scorecards/rounds/{round_.id}/comments?q=zebra").text

    # Reply from the group: the form names the question and quotes the comment.
    assert "You said: “Pricing is too high for SMB”" in page.text
    response = pm.post(f"/scorecards/rounds/{round_.id}/replies", data={
        "csrf_token": csrf_token_from(page.text), "question_key": "why",
        "body": "You said: “Pricing is too high for SMB”\nWe did: an SMB plan ships in March."})
    assert response.status_code == 302
    reply = db.session.scalar(select(Reply))
    assert reply.question_key == "why" and reply.body.endswith("ships in March.")

    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    assert "Reply to this" not in leader.get(f"/scorecards/rounds/{round_.id}/comments").text


def test_a_search_narrows_a_confidential_list(app):
    round_ = _confidential(writers=7)
    assert [item["text"] for item in comments(round_, "gaps", search="TEXT 3")["items"]] == ["other text 3"]


def test_a_search_never_opens_a_withheld_list(app):
    with pytest.raises(CommentsWithheld):
        comments(_confidential(writers=3), "gaps", search="other")
