"""Comments, filtered by question and slice, subject to the comment threshold of
the publication plan. A comment is a free-text answer, or the text a rep typed
for a multi-choice question's "Other" option."""

from __future__ import annotations


from sqlalchemy import and_, case, or_, select

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


def comments(round_, question_key=None, slice_kind=None, slice_name=None) -> dict:
    """The free-text answers of a round (and its "Other" texts), filtered by
    question and slice.

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
