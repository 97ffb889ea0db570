"""The card: one round's metrics, compared with the previous round and a year
earlier, overall and per slice, with confidentiality applied; live cards are
assembled once per set of inputs."""

from __future__ import annotations

import hashlib
import json


from surveys import disclosure, metrics
from surveys.caches import BoundedCache
from surveys.scorecard.confidentiality import Policy, RoundView, policy_fingerprint, round_plan
from surveys.scorecard.cube import load_aggregates
from surveys.scorecard.groups import ALL_KINDS, HELD_UNTIL_CLOSE, OVERALL, SLICE_KINDS, TeamTree, kind_name
from surveys.scorecard.history import previous_round, unbroken_keys, year_ago_round
from surveys.scorecard.movers import choice_shifts, top_movers, with_meanings
from surveys.scorecard.participation import non_responders, participation_summary, response_rate_pct
from surveys.scorecard.stored import aggregates_json, stored_aggregates, stored_snapshot


def round_summary(round_):
    if round_ is None:
        return None
    return {
        "id": round_.id, "period_key": round_.period_key, "status": round_.status,
        "version": round_.version.number if round_.version else None,
    }


def _comparison(spec, result, other: RoundView | None, group_name):
    """(comparable, previous metrics, delta, significance) against another round's
    view of the same slice; nothing where that round withheld it."""
    other_spec = other.specs.get(spec.key) if other else None
    comparable = other_spec is not None and other_spec.measure == spec.measure and (
        other.unbroken is None or spec.key in other.unbroken)
    if not comparable or result is None:
        return comparable, None, None, None
    group = OVERALL if group_name is OVERALL else other.group_by_name(group_name)
    before = other.visible_result(group, spec.key) if group is not None else None
    if before is None:
        return comparable, None, None, None
    return comparable, before.metrics, metrics.deltas(result, before), metrics.significance(result, before)


def _question_entry(spec, question, current: RoundView, previous, year_ago, group):
    name = OVERALL if group is OVERALL else current.group_name(group)
    entry = {
        "key": spec.key, "type": spec.type, "prompt": spec.prompt, "n": None, "suppressed": False,
        "metrics": None, "previous": None, "delta": None, "ci95": None, "significant": None,
        "comparable": False, "year_ago": None, "year_ago_delta": None, "year_ago_significant": None,
        "year_ago_comparable": False,
        "version": current.round.version.number if current.round.version else None,
    }
    if spec.type in ("single_choice", "multi_choice") and question is not None:
        labels = {option["key"]: option["label"] for option in question.options}
        labels.setdefault(metrics.OTHER_OPTION_KEY, "Other")
        entry["options"] = [{"key": key, "label": labels.get(key, key)} for key in spec.option_keys]
    if spec.type == "scale":
        entry["scale_max"] = spec.scale_max
    reason = current.questions_withheld[spec.key].get(group)
    result = None if reason else current.aggregates.result(group, spec)
    entry["comparable"], entry["previous"], entry["delta"], entry["significant"] = _comparison(
        spec, result, previous, name
    )
    (entry["year_ago_comparable"], entry["year_ago"], entry["year_ago_delta"],
     entry["year_ago_significant"]) = _comparison(spec, result, year_ago, name)
    if reason:
        entry.update(suppressed=True, suppressed_reason=reason)
        return entry
    entry.update(n=result.n, metrics=result.metrics, ci95=metrics.intervals(result))
    if result.unanimous is not None:
        entry["unanimous"] = {"n": result.n, "value": result.unanimous}
    return entry


def compute_scorecards(round_, kinds=ALL_KINDS) -> dict:
    """{kind name: card} for the round, computed now from the database (one
    pass for every kind): "overall" for kind None, else "team", "region", "segment"."""
    return assemble_cards(round_, kinds)[0]


def assemble_cards(round_, kinds) -> tuple[dict, dict]:
    """The cards, and the aggregates they were computed from. The round's own
    answers are always read; the previous and year-ago rounds come from their
    finalized snapshots when they have them (a closed round's sums never
    change), which leaves a live card one round of answers to read."""
    kinds = tuple(kinds)
    kinds_read = tuple(dict.fromkeys((None, *kinds)))
    before_round = previous_round(round_)
    year_round = year_ago_round(round_)
    if year_round is not None and before_round is not None and year_round.id == before_round.id:
        year_round = None  # a yearly cadence: the previous round already is the year-ago one
    rounds = [r for r in (round_, before_round, year_round) if r is not None]
    tree = TeamTree.for_round(round_)
    aggregates = {}
    read_live = [round_]
    for other in rounds[1:]:
        stored = stored_aggregates(other, kinds_read)
        if stored is None:
            read_live.append(other)
        else:
            aggregates.update(stored)
    aggregates.update(load_aggregates(read_live, kinds_read, tree))
    questions = {q.key: q for q in (round_.version.questions if round_.version else [])}
    if set(SLICE_KINDS) <= set(kinds_read):
        everyone = aggregates  # already at the finest grain
    else:
        everyone = load_aggregates([round_], ALL_KINDS, tree, answers=False)
    plans = {r.id: round_plan(r, tree if r is round_ else None) for r in rounds}
    shared = {
        "participation": participation_summary(round_, everyone, tree, Policy.for_round(round_), plans[round_.id]),
        "non_responders": non_responders(round_),
    }
    unbroken = {other.id: unbroken_keys(round_.version, other.version) for other in rounds[1:]}
    inputs = _card_inputs(round_, kinds, rounds, aggregates, tree, shared)
    cards = LIVE_CARDS.get(inputs)
    if cards is None:
        cards = {}
        for kind in kinds:
            views = {r.id: RoundView.build(r, kind, aggregates[(r.id, kind)], tree, plans[r.id]) for r in rounds}
            for other in rounds[1:]:
                views[other.id].unbroken = unbroken[other.id]
            current = views[round_.id]
            previous = views.get(before_round.id) if before_round else None
            year_ago = views.get(year_round.id) if year_round else None
            cards[kind_name(kind)] = _assemble(round_, before_round, year_round, kind, current, previous, year_ago,
                                               questions, shared)
        LIVE_CARDS.remember(inputs, cards)
    return cards, aggregates, plans[round_.id], tree


# A card is a pure function of what was read for it, and views of a live card
# repeat (leaders reload it; answers arrive minutes apart). A process keeps
# the last cards it assembled under a digest of every input, and hands one
# out again only for identical inputs: a new answer, a moved team or a
# stricter policy is a new digest. Cards are read-only, like stored ones.
LIVE_CARDS = BoundedCache(size=32)


def _card_inputs(round_, kinds, rounds, aggregates, tree, shared) -> str:
    """A digest of everything the cards are assembled from."""
    question_set = round_.cadence.question_set
    sums = sorted(aggregates.items(), key=lambda item: (item[0][0], kind_name(item[0][1])))
    inputs = {
        "kinds": [kind_name(kind) for kind in kinds],
        "rounds": [[round_summary(r), r.question_set_version_id] for r in rounds],
        "policy": [policy_fingerprint(question_set), question_set.hold_until_close, round_.policy],
        "teams": sorted(tree.teams.items()),
        # A finalized round's sums are named by their snapshot; live ones by content.
        "sums": [[round_id, kind_name(kind), group_sums.snapshot or aggregates_json(group_sums)]
                 for (round_id, kind), group_sums in sums],
        "shared": shared,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _assemble(round_, before_round, year_round, kind, current, previous, year_ago, questions, shared) -> dict:
    invited, responded = current.aggregates.participation.get(OVERALL, (0, 0))
    held = current.policy.held
    overall_withheld = shared["participation"].get("withheld")
    specs = list(current.specs.values())
    overall_entries = [_question_entry(spec, questions.get(spec.key), current, previous, year_ago, OVERALL)
                       for spec in specs]
    card = {
        "round": round_summary(round_),
        "previous_round": round_summary(before_round),
        "year_ago_round": round_summary(year_round),
        "response_rate": {
            "invited": None if overall_withheld else invited,
            "responded": None if held or overall_withheld else responded,
            "rate": None if held or overall_withheld else response_rate_pct(invited, responded),
        },
        **{name: value for name, value in disclosure.effective_policy(round_).items() if name != "hold_until_close"},
        "held_until_close": held,
        "participation": shared["participation"],
        "non_responders": shared["non_responders"],
        "questions": overall_entries,
        "top_movers": top_movers(overall_entries),
        "choice_shifts": choice_shifts(overall_entries),
        "slices": [],
    }
    for group in _ordered_slices(current):
        slice_invited, slice_responded = current.aggregates.participation[group]
        reason = current.groups_withheld.get(group)
        # A withheld group shows its name and that it is withheld, nothing else.
        entry = {
            "kind": kind,
            "name": current.group_name(group),
            "n": None if held or reason else slice_responded,
            "invited": None if reason and reason != HELD_UNTIL_CLOSE else slice_invited,
            "rate": None if held or reason else response_rate_pct(slice_invited, slice_responded),
            "suppressed": bool(reason),
            "questions": [],
        }
        if reason:
            entry["suppressed_reason"] = reason
        else:
            entry["questions"] = [
                _question_entry(spec, questions.get(spec.key), current, previous, year_ago, group) for spec in specs
            ]
        card["slices"].append(entry)
    return card


def _ordered_slices(view: RoundView):
    groups = [g for g in view.aggregates.groups if g is not OVERALL]
    return sorted(groups, key=lambda g: str(view.group_name(g)).lower())


def build_scorecard(round_, slice_kind=None) -> dict:
    """The API.md scorecard of one round; `slice_kind` is None, "team", "region"
    or "segment". A finalized round answers from its stored card (as long as
    the question set's confidentiality is what it was computed under)."""
    return scorecard_and_sums(round_, slice_kind)[0]


def scorecard_and_sums(round_, slice_kind=None) -> tuple[dict, dict]:
    """`build_scorecard`, and the round's overall sums a live card was computed
    from ({(round id, None): RoundAggregates}; {} for a stored card), so the
    page's long-run tests need not read the round's answers again."""
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        raise ValueError(f"unknown slice {slice_kind!r}; use one of {', '.join(SLICE_KINDS)}")
    snapshot = stored_snapshot(round_)
    questions = round_.version.questions if round_.version else []
    if snapshot is not None:
        return with_meanings(snapshot.card(kind_name(slice_kind)), questions), {}
    cards, aggregates, _plan, _tree = assemble_cards(round_, (slice_kind,))
    return with_meanings(cards[kind_name(slice_kind)], questions), {(round_.id, None): aggregates[(round_.id, None)]}
