"""Suggestion accuracy on a labelled sample (tests/data/triage_comments.csv:
240 sales comments, 20 per need, written for this test, labelled by need).

For each need, a seeded shuffle puts SEED_PER_NEED of its comments in as
earlier evidence (as a PM would have linked them); every other comment is
a query, and a hit is its true need among the three suggestions. The figure
is reported in docs/triage.md; the floor below is what the suggestions must
keep."""

import csv
import random
from collections import defaultdict
from pathlib import Path

from surveys.triage.suggest import Suggester

DATA = Path(__file__).resolve().parents[2] / "data"
SEED = 17
SEED_PER_NEED = 3
TOP3_FLOOR = 0.62  # measured 0.686 (docs/triage.md); chance is 3 in 12


def load():
    with open(DATA / "triage_needs.csv", newline="") as handle:
        names = {row["need"]: row["name"] for row in csv.DictReader(handle)}
    comments = defaultdict(list)
    with open(DATA / "triage_comments.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            comments[row["need"]].append(row["comment"])
    return names, comments


def evaluate(seed_per_need=SEED_PER_NEED, seed=SEED) -> dict:
    names, comments = load()
    rng = random.Random(seed)
    documents, queries = {}, []
    for need in sorted(names):
        texts = list(comments[need])
        rng.shuffle(texts)
        documents[need] = (names[need], texts[:seed_per_need])
        queries += [(text, need) for text in texts[seed_per_need:]]
    suggester = Suggester.fit(documents)
    ranked = suggester.top([text for text, _ in queries])
    top1 = sum(1 for (_, need), got in zip(queries, ranked) if got and got[0][0] == need)
    top3 = sum(1 for (_, need), got in zip(queries, ranked) if need in [n for n, _ in got])
    return {"queries": len(queries), "top1": top1 / len(queries), "top3": top3 / len(queries)}


def test_the_sample_is_what_the_docs_describe():
    names, comments = load()
    assert len(names) == 12 and sorted(len(texts) for texts in comments.values()) == [20] * 12
    assert set(comments) == set(names)


def test_top3_accuracy_stays_above_the_floor():
    result = evaluate()
    assert result["queries"] == 12 * (20 - SEED_PER_NEED)
    assert result["top3"] >= TOP3_FLOOR, result
    assert result["top1"] <= result["top3"]


def test_more_earlier_evidence_does_not_make_suggestions_worse():
    assert evaluate(seed_per_need=8)["top3"] >= evaluate(seed_per_need=1)["top3"]


def test_no_needs_or_no_evidence_gives_no_suggestions():
    assert Suggester.fit({}).top(["SSO please"]) == [[]]
    only_names = Suggester.fit({1: ("SAML single sign-on", []), 2: ("Bulk export", [])})
    assert [need for need, _ in only_names.top(["we need single sign-on"])[0]][0] == 1
