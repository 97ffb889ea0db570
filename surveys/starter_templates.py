"""Starter templates: question sets written for the sales-to-product channel,
which a PM copies into a new set and adapts.

Each template is a POST /api/v1/question-sets body, so a copy goes through
the same validation as any other set. Keys are chosen to stay meaningful for
years of trend lines; option keys are stable words, labels can be reworded.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from surveys.questions.drafts import create_question_set


def _options(*pairs: tuple[str, str], bad: tuple[str, ...] = (), good: tuple[str, ...] = ()) -> list[dict]:
    """Options from (key, label) pairs; those named in `bad` or `good` are
    bad or good news when chosen (a rise in their share is worse or better)."""
    return [{"key": key, "label": label, "sentiment": "bad" if key in bad else "good" if key in good else "neutral"}
            for key, label in pairs]


def _all_bad(options: list[dict]) -> list[dict]:
    """The same options as bad news: losing to any competitor, any missing capability."""
    return [{**option, "sentiment": "bad"} for option in options]


COMPETITORS = _options(
    ("incumbent", "The customer's current vendor"),
    ("big_suite", "A large suite vendor"),
    ("niche_specialist", "A niche specialist"),
    ("in_house", "Building it in-house"),
    ("no_decision", "No decision / status quo"),
)

PRODUCT_AREAS = _options(
    ("integrations", "Integrations"),
    ("reporting", "Reporting and analytics"),
    ("security", "Security and compliance (SSO, audit, data residency)"),
    ("admin", "Administration and permissions"),
    ("mobile", "Mobile"),
    ("performance", "Performance at scale"),
    ("pricing_packaging", "Pricing and packaging"),
)


@dataclass(frozen=True)
class StarterTemplate:
    slug: str
    name: str
    summary: str
    cadence_hint: str
    body: dict

    @property
    def question_count(self) -> int:
        return len(self.body["questions"])


TEMPLATES: tuple[StarterTemplate, ...] = (
    StarterTemplate(
        slug="win-loss-pulse",
        name="Monthly win/loss pulse",
        summary="Why deals were won and lost this month, and how confident reps are in the quarter.",
        cadence_hint="Monthly, first Monday, open 5 days.",
        body={
            "name": "Monthly win/loss pulse",
            "description": "What moved deals this month: wins, losses, the reasons, and the outlook.",
            "confidentiality": "confidential",
            "questions": [
                {"key": "quarter_confidence", "type": "scale", "prompt": "How confident are you in hitting your number this quarter?",
                 "scale_max": 5, "low_label": "Not at all", "high_label": "Completely", "pinned": True},
                {"key": "deals_won", "type": "number", "prompt": "How many deals did you close-win this month?",
                 "min": 0, "max": 500, "unit": "deals", "whole_numbers": True, "pinned": True},
                {"key": "main_win_reason", "type": "single_choice", "prompt": "What was the main reason you won?",
                 "required": False, "help": "Think of your most important win this month.",
                 "options": _options(("product_fit", "Product fit"), ("price", "Price"), ("relationship", "Relationship and trust"),
                                     ("time_to_value", "Time to value"), ("support", "Support and services"))},
                {"key": "lost_deal", "type": "yes_no", "prompt": "Did you lose a deal this month?", "higher_is_better": False},
                {"key": "main_loss_reason", "type": "single_choice", "prompt": "What was the main reason you lost?",
                 "show_if": {"question": "lost_deal", "equals": "yes"},
                 "options": _options(("missing_feature", "A missing feature"), ("price", "Price"), ("competitor", "A competitor was stronger"),
                                     ("no_decision", "No decision / budget frozen"), ("timing", "Timing"),
                                     bad=("missing_feature", "price", "competitor", "no_decision"))},
                {"key": "lost_to", "type": "single_choice", "prompt": "Who did you lose to?",
                 "show_if": {"question": "lost_deal", "equals": "yes"}, "options": _all_bad(COMPETITORS)},
                {"key": "loss_story", "type": "text", "prompt": "In one or two sentences, what would have saved the deal?",
                 "required": False, "max_length": 1000, "show_if": {"question": "lost_deal", "equals": "yes"}},
            ],
        },
    ),
    StarterTemplate(
        slug="competitive-intelligence",
        name="Competitive intelligence",
        summary="Who reps meet in deals, where we win and lose against them, and what changed in the market.",
        cadence_hint="Monthly or every other week.",
        body={
            "name": "Competitive intelligence",
            "description": "Which competitors reps meet, how we compare, and what moved in the market.",
            "confidentiality": "confidential",
            "questions": [
                {"key": "competitors_seen", "type": "multi_choice", "prompt": "Which competitors did you meet in deals this period?",
                 "options": COMPETITORS, "allow_other": True},
                {"key": "toughest_competitor", "type": "single_choice", "prompt": "Which one was the toughest?", "options": COMPETITORS},
                {"key": "win_rate_vs_competition", "type": "scale", "prompt": "When we compete head to head, how often do we win?",
                 "scale_max": 5, "low_label": "Almost never", "high_label": "Almost always", "pinned": True},
                {"key": "competitor_pricing_pressure", "type": "yes_no", "prompt": "Did a competitor undercut us on price?",
                 "higher_is_better": False},
                {"key": "discount_needed", "type": "number", "prompt": "About how much discount did it take to stay in the deal?",
                 "min": 0, "max": 100, "unit": "%", "required": False, "higher_is_better": False,
                 "show_if": {"question": "competitor_pricing_pressure", "equals": "yes"}},
                {"key": "competitor_news", "type": "text", "prompt": "Anything new from competitors (launches, pricing, messaging)?",
                 "required": False, "max_length": 1500},
            ],
        },
    ),
    StarterTemplate(
        slug="feature-gaps",
        name="Feature gaps and blockers",
        summary="The missing capabilities that stall or kill deals, and how much pipeline they touch.",
        cadence_hint="Monthly, before roadmap reviews.",
        body={
            "name": "Feature gaps and blockers",
            "description": "What customers ask for that we cannot do yet, and what it costs us.",
            "confidentiality": "attributed",
            "questions": [
                {"key": "gap_blocked_deal", "type": "yes_no", "prompt": "Did a missing feature block or stall a deal this period?",
                 "higher_is_better": False, "pinned": True},
                {"key": "gap_areas", "type": "multi_choice", "prompt": "Which areas were the gaps in?",
                 "show_if": {"question": "gap_blocked_deal", "equals": "yes"}, "options": _all_bad(PRODUCT_AREAS), "allow_other": True},
                {"key": "biggest_gap", "type": "single_choice", "prompt": "Which gap hurt most?",
                 "show_if": {"question": "gap_blocked_deal", "equals": "yes"}, "options": PRODUCT_AREAS},
                {"key": "pipeline_at_risk", "type": "number", "prompt": "Roughly how much pipeline is at risk because of it?",
                 "help": "Annual contract value in thousands; a rough figure is fine.", "min": 0, "unit": "k ACV",
                 "higher_is_better": False,
                 "required": False, "show_if": {"question": "gap_blocked_deal", "equals": "yes"}},
                {"key": "workaround_exists", "type": "yes_no", "prompt": "Did a workaround keep the deal alive?",
                 "show_if": {"question": "gap_blocked_deal", "equals": "yes"}},
                {"key": "gap_details", "type": "text", "prompt": "Describe the gap in the customer's words.",
                 "help": "Who asked, what they tried to do, and why it mattered to them.", "required": False, "max_length": 2000},
            ],
        },
    ),
    StarterTemplate(
        slug="product-quality",
        name="Product quality as customers see it",
        summary="How customers experience reliability, ease of use and support, through the people who hear it first.",
        cadence_hint="Quarterly, or monthly after a big release.",
        body={
            "name": "Product quality as customers see it",
            "description": "Reliability, ease of use and support as customers describe them to sales.",
            "confidentiality": "confidential",
            "questions": [
                {"key": "customer_recommend", "type": "nps",
                 "prompt": "How likely are your customers to recommend us to a peer, from what you hear?",
                 "low_label": "Not at all likely", "high_label": "Extremely likely", "pinned": True},
                {"key": "reliability", "type": "scale", "prompt": "How do customers rate the product's reliability?",
                 "scale_max": 5, "low_label": "Very poor", "high_label": "Excellent"},
                {"key": "ease_of_use", "type": "scale", "prompt": "How do customers rate its ease of use?",
                 "scale_max": 5, "low_label": "Very hard", "high_label": "Very easy"},
                {"key": "quality_complaint", "type": "yes_no", "prompt": "Did a customer raise a quality problem with you?",
                 "higher_is_better": False},
                {"key": "complaint_area", "type": "single_choice", "prompt": "What was it about?",
                 "show_if": {"question": "quality_complaint", "equals": "yes"},
                 "options": _options(("bugs", "Bugs"), ("outages", "Outages or slowness"), ("usability", "Hard to use"),
                                     ("support", "Support response"), ("docs", "Documentation"))},
                {"key": "escalations", "type": "number", "prompt": "How many escalations did you handle?",
                 "min": 0, "max": 100, "unit": "escalations", "required": False, "whole_numbers": True,
                 "higher_is_better": False},
                {"key": "quality_comment", "type": "text", "prompt": "What should product fix first?", "required": False,
                 "max_length": 1500},
            ],
        },
    ),
    StarterTemplate(
        slug="pricing-packaging",
        name="Pricing and packaging check",
        summary="Whether price, plans and contract terms help or hurt deals.",
        cadence_hint="Quarterly.",
        body={
            "name": "Pricing and packaging check",
            "description": "How price, plans and terms land with buyers.",
            "confidentiality": "confidential",
            "questions": [
                {"key": "price_objection", "type": "scale", "prompt": "How often did price come up as an objection?",
                 "scale_max": 5, "low_label": "Never", "high_label": "In every deal", "higher_is_better": False},
                {"key": "plan_fit", "type": "single_choice", "prompt": "How well do our plans fit what buyers want to buy?",
                 "options": _options(("good_fit", "Good fit"), ("too_expensive_entry", "The entry plan is too expensive"),
                                     ("missing_middle", "A middle plan is missing"), ("too_complex", "Too complex to explain"),
                                     good=("good_fit",), bad=("too_expensive_entry", "missing_middle", "too_complex"))},
                {"key": "average_discount", "type": "number", "prompt": "Your average discount this quarter?",
                 "min": 0, "max": 100, "unit": "%", "higher_is_better": False},
                {"key": "terms_blocker", "type": "yes_no", "prompt": "Did contract terms (length, payment, liability) block a deal?",
                 "higher_is_better": False},
                {"key": "pricing_idea", "type": "text", "prompt": "One change to pricing or packaging that would help you win?",
                 "required": False, "max_length": 1000},
            ],
        },
    ),
    StarterTemplate(
        slug="deal-lost",
        name="Deal lost: while it is fresh",
        summary="Four questions to the owner of a deal just lost: why, what was missing, how close, what would have saved it.",
        cadence_hint="A deal moment on closed-lost (an hour after close, in working hours).",
        body={
            "name": "Deal lost",
            "description": "Asked of the deal's owner right after it closes lost. Attributed: a deal identifies its owner.",
            "confidentiality": "attributed",
            "questions": [
                {"key": "loss_reason", "type": "single_choice", "prompt": "What was the main reason this deal was lost?",
                 "options": _options(("missing_feature", "A missing feature"), ("price", "Price"),
                                     ("competitor", "A competitor was stronger"), ("no_decision", "No decision / budget frozen"),
                                     ("timing", "Timing"), ("relationship", "Relationship"), bad=("missing_feature",))},
                {"key": "product_gap", "type": "multi_choice", "prompt": "Which product areas fell short?",
                 "required": False, "options": _all_bad(PRODUCT_AREAS)},
                {"key": "closeness", "type": "scale", "prompt": "How close did we come to winning?",
                 "scale_max": 5, "low_label": "Never in it", "high_label": "Lost at the wire"},
                {"key": "save_story", "type": "text", "prompt": "In a sentence: what would have saved it?",
                 "required": False, "max_length": 500},
            ],
        },
    ),
    StarterTemplate(
        slug="deal-won",
        name="Deal won: what made it",
        summary="Three questions to the owner of a deal just won: the reason, how much the product mattered, the story.",
        cadence_hint="A deal moment on closed-won (an hour after close, in working hours).",
        body={
            "name": "Deal won",
            "description": "Asked of the deal's owner right after it closes won. Attributed: a deal identifies its owner.",
            "confidentiality": "attributed",
            "questions": [
                {"key": "win_reason", "type": "single_choice", "prompt": "What was the main reason this deal was won?",
                 "options": _options(("product_fit", "Product fit"), ("price", "Price"), ("relationship", "Relationship and trust"),
                                     ("time_to_value", "Time to value"), ("support", "Support and services"))},
                {"key": "product_weight", "type": "scale", "prompt": "How much did the product itself decide it?",
                 "scale_max": 5, "low_label": "Not at all", "high_label": "Entirely"},
                {"key": "win_story", "type": "text", "prompt": "In a sentence: what tipped it?",
                 "required": False, "max_length": 500},
            ],
        },
    ),
)

_BY_SLUG = {template.slug: template for template in TEMPLATES}


def template_by_slug(slug: str) -> StarterTemplate | None:
    return _BY_SLUG.get(slug)


def create_from_template(owner, template: StarterTemplate):
    """A new question set (draft version 1) copied from `template`; the
    caller commits. Later changes to the template never touch the copy."""
    return create_question_set(owner, copy.deepcopy(template.body))
