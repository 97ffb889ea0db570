"""Comments, filtered by question and slice, subject to the comment threshold of
the publication plan. A comment is a free-text answer, or the text a rep typed
for a multi-choice question's "Other" option."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

from sqlalchemy import and_, case, func, or_, select

from cadence.clock import isoformat_z
from cadence.models import Invitation
from surveys.org.models import Person, Team
from surveys import metrics
from surveys.extensions import db
from surveys.models import Answer, Response
from surveys.scorecard.confidentiality import Policy, groups_by_name, round_plan
from surveys.scorecard.groups import OVERALL, SLICE_KINDS, TeamTree
from surveys.scorecard.history import question_specs


class CommentsWithheld(Exception):
    """The comments asked for would reveal a group under the comment threshold."""


def comments(round_, question_key=None, slice_kind=None, slice_name=None, search=None) -> dict:
    """The free-text answers of a round (and its "Other" texts), filtered by
    question, slice and words they contain (`search`, any case).

    Attributed sets: each comment with its author's name, team, region and
    segment. Confidential sets: no names or slice attributes, in a neutral
    order, and only for the groups the round's plan publishes comments for
    (every cell of writers cut by those groups, across every slice kind,
    holds at least the comment threshold, so no set difference of two lists
    singles out a small group). Raises CommentsWithheld (with the reason) otherwise, and
    ValueError for a slice or question that does not exist."""
    specs = _comment_specs(round_)
    if question_key is not None and question_key not in specs:
        raise ValueError(f"{question_key!r} is not a question of this round that takes comments")
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        raise ValueError(f"unknown slice {slice_kind!r}; use one of {', '.join(SLICE_KINDS)}")
    policy = Policy.for_round(round_)
    if policy.held:
        raise CommentsWithheld("Comments are held until the round closes.")
    tree = TeamTree.for_round(round_)
    group = OVERALL
    if slice_kind is not None:
        group = groups_by_name(round_, tree)[slice_kind].get(slice_name)
        if group is None:
            raise ValueError(f"no {slice_kind} called {slice_name!r} took part in this round")
    keys = [question_key] if question_key else list(specs)
    if policy.comment_min_size is not None:
        plan = round_plan(round_, tree)
        kind, value = (slice_kind, group) if group is not OVERALL else (None, None)
        keys = [key for key in keys if not plan.comment_reason(key, kind, value)]
        if not keys:
            raise CommentsWithheld(
                f"Comments are shown only for groups where at least {policy.comment_min_size} people wrote one, "
                "and never where, next to the other groups shown, a smaller group of writers could be worked out."
            )
    text_keys = [key for key in keys if specs[key].type == "text"]
    other_keys = [key for key in keys if specs[key].type != "text"]
    # A text question's answer is its value; an "Other" option's text is its detail.
    text = case((Answer.question_key.in_(other_keys), Answer.detail), else_=Answer.value_text) if other_keys \
        else Answer.value_text
    statement = (
        select(Answer.question_key, text, Person.name, Team.path, Invitation.region, Invitation.segment,
               Response.submitted_at)
        .select_from(Answer)
        .join(Response, Response.id == Answer.response_id)
        .join(Invitation, Invitation.id == Response.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .outerjoin(Team, Team.id == Invitation.team_id)
        .where(Answer.round_id == round_.id, or_(
            and_(Answer.question_key.in_(text_keys), Answer.value_text.is_not(None)),
            and_(Answer.question_key.in_(other_keys), Answer.value_text == metrics.OTHER_OPTION_KEY,
                 Answer.detail.is_not(None)),
        ))
    )
    if slice_kind == "team":
        statement = statement.where(Invitation.team_id.in_(tree.within(group)))
    elif slice_kind == "region":
        statement = statement.where(Invitation.region == group)
    elif slice_kind == "segment":
        statement = statement.where(Invitation.segment == group)
    if search and search.strip():
        # Narrows the published list, never widens it: the plan was checked above.
        statement = statement.where(func.lower(text).contains(search.strip().lower(), autoescape=True))
    attributed = policy.min_size is None
    items = []
    for key, text, name, team, region, segment, submitted_at in db.session.execute(
        statement.order_by(Response.submitted_at, Answer.id)
    ):
        item = {"question_key": key, "prompt": comment_prompt(specs[key]), "text": text}
        if attributed:
            item.update(name=name, team=team, region=region, segment=segment, submitted_at=isoformat_z(submitted_at))
        items.append(item)
    if not attributed:
        items.sort(key=lambda item: (keys.index(item["question_key"]), item["text"].lower()))
    return {"attributed": attributed, "questions": keys, "items": items}


# Comments this alike (difflib's ratio over their normalized words) are one
# group: "Pricing too high!" and "pricing is too high" read as the same point.
NEAR_IDENTICAL = 0.85
# Past this many distinct texts per question only exact matches (after
# normalizing) are grouped: the pairwise comparison grows with its square.
MAX_FUZZY_TEXTS = 400


def normalized(text: str) -> str:
    """Case, accents, punctuation and spacing removed: what makes two comments "identical"."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return " ".join(re.findall(r"[a-z0-9]+", text))


def group_comments(items: list[dict]) -> list[dict]:
    """Identical or near-identical comments of one question as one group:
    [{"question_key", "prompt", "text" (the group's first comment), "count",
    "variants" (the other wordings), "items"}], most repeated first."""
    groups: list[dict] = []
    by_question: dict[str, dict[str, dict]] = {}
    for item in items:
        exact = by_question.setdefault(item["question_key"], {})
        key = normalized(item["text"]) or item["text"]
        group = exact.get(key)
        if group is None:
            group = {"question_key": item["question_key"], "prompt": item["prompt"], "text": item["text"],
                     "count": 0, "variants": [], "items": [], "_keys": [key]}
            exact[key] = group
            groups.append(group)
        elif item["text"] != group["text"] and item["text"] not in group["variants"]:
            group["variants"].append(item["text"])
        group["count"] += 1
        group["items"].append(item)
    merged = []
    for question_key in by_question:
        merged.extend(_merge_near(g for g in groups if g["question_key"] == question_key))
    for group in merged:
        del group["_keys"]
    # Most repeated first; otherwise the list's own order (time for attributed
    # sets, question then text for confidential ones).
    first_seen = {id(item): index for index, item in enumerate(items)}
    return sorted(merged, key=lambda g: (-g["count"], first_seen[id(g["items"][0])]))


def _merge_near(groups) -> list[dict]:
    groups = list(groups)
    if len(groups) > MAX_FUZZY_TEXTS:
        return groups
    kept: list[dict] = []
    for group in groups:
        key = group["_keys"][0]
        home = next((k for k in kept if _alike(key, k["_keys"][0])), None)
        if home is None:
            kept.append(group)
            continue
        home["count"] += group["count"]
        home["items"].extend(group["items"])
        home["variants"].extend(t for t in [group["text"], *group["variants"]] if t not in home["variants"])
    return kept


# Shorter texts group only when identical: one letter is a large share of
# "sso" or "api", and "q3" is not "q4".
MIN_FUZZY_LENGTH = 16


def _alike(a: str, b: str) -> bool:
    if min(len(a), len(b)) < MIN_FUZZY_LENGTH or re.findall(r"\d+", a) != re.findall(r"\d+", b):
        return False
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= NEAR_IDENTICAL and matcher.ratio() >= NEAR_IDENTICAL


def _comment_specs(round_) -> dict:
    """The round's questions that take comments, by key, in the version's order."""
    return {spec.key: spec for spec in question_specs(round_.version) if spec.has_comments}


def comment_prompt(spec) -> str:
    """How a comment names its question: the prompt, marked "(Other)" for a
    multi-choice question's "Other" text."""
    return spec.prompt if spec.type == "text" else f"{spec.prompt} (Other)"


def comment_choices(round_) -> dict:
    """What the comments filter offers: the round's questions that take
    comments and, per slice kind, the slice names that took part."""
    questions = [(key, comment_prompt(spec)) for key, spec in _comment_specs(round_).items()]
    names = groups_by_name(round_, TeamTree.for_round(round_))
    return {"questions": questions,
            "slices": {kind: sorted(values, key=str.lower) for kind, values in names.items()}}
