"""Subject A/B tests: up to four subjects on a template, each email gets one.

Variant 1 (A) is the template's ``subject``; B, C and D are ``subject_b`` … ``subject_d``,
each with a weight. An email's variant is a pure function of its id and its template
revision's weights, so every retry and resend of an email keeps the subject it got; the
worker picks it on the first attempt and records it on the row (``Email.subject_variant``).
Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

#: Variant numbers are 1 to 4; 0 means "no A/B test".
LETTERS = {1: "A", 2: "B", 3: "C", 4: "D"}

#: The fields of each variant: (number, subject field, weight field).
VARIANT_FIELDS = (
    (1, "subject", "subject_weight"),
    (2, "subject_b", "subject_b_weight"),
    (3, "subject_c", "subject_c_weight"),
    (4, "subject_d", "subject_d_weight"),
)


@dataclass(frozen=True)
class Variant:
    """One subject of a test."""

    number: int
    subject: str
    weight: int

    @property
    def letter(self) -> str:
        return LETTERS[self.number]


def variants(template: Any) -> list[Variant]:
    """The variants of ``template`` (a template or a revision) that emails may get.

    Empty when the template has no other subject than ``subject`` (no test). A variant
    whose weight is 0 is paused: no email gets it.
    """
    found = [
        Variant(number, getattr(template, subject, "") or "", getattr(template, weight, 0) or 0)
        for number, subject, weight in VARIANT_FIELDS
    ]
    if not any(variant.subject.strip() for variant in found[1:]):
        return []
    return [variant for variant in found if variant.subject.strip() and variant.weight > 0]


def choose_variant(email_id: int, template: Any) -> int:
    """The variant number the email ``email_id`` gets (0 when the template has no test).

    Deterministic: a hash of the id, not ``random``, so that a retry on another worker
    picks the same one; spread in proportion to the weights over many ids.
    """
    active = variants(template)
    if not active:
        return 0
    digest = hashlib.sha256(f"transactional_mail.subject:{email_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(variant.weight for variant in active)
    for variant in active:
        if point < variant.weight:
            return variant.number
        point -= variant.weight
    raise AssertionError("unreachable: the point is below the total weight")


@dataclass(frozen=True)
class _VariantSource:
    """A revision's sources with another subject, under a cache key of its own."""

    pk: str | None
    subject: str
    preheader: str
    html: str
    text: str


def with_subject(revision: Any, number: int) -> Any:
    """What ``render_email`` should render for variant ``number`` of ``revision``.

    The revision itself for variant 0 or 1; otherwise a copy with that variant's subject,
    whose ``pk`` (``"<revision>/subject-<n>"``) keeps its compiled form apart from the
    revision's in the worker's cache.
    """
    if number <= 1:
        return revision
    subject_field = VARIANT_FIELDS[number - 1][1]
    return _VariantSource(
        pk=None if revision.pk is None else f"{revision.pk}/subject-{number}",
        subject=getattr(revision, subject_field),
        preheader=getattr(revision, "preheader", "") or "", html=revision.html,
        text=revision.text,
    )


def normalize_weights(template: Any) -> None:
    """Give a blank (None) weight of ``template`` the default weight, 1."""
    for _number, _subject, weight in VARIANT_FIELDS:
        if getattr(template, weight) is None:
            setattr(template, weight, 1)


def variant_weight_errors(template: Any) -> dict[str, list[str]]:
    """Form errors of the test's fields: a weight without its subject is harmless, but a
    test needs a positive weight on at least two subjects to compare anything."""
    if not any((getattr(template, field, "") or "").strip()
               for _number, field, _weight in VARIANT_FIELDS[1:]):
        return {}
    weighted = [
        number for number, field, weight in VARIANT_FIELDS
        if (getattr(template, field, "") or "").strip() and (getattr(template, weight) or 0) > 0
    ]
    if len(weighted) < 2:
        return {"subject_weight": [
            "An A/B test needs at least two subjects with a weight above 0: give the "
            "subject or a variant a weight, or clear the variants to end the test."]}
    return {}


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default), as (low, high).

    Sound for small samples and for rates near 0 or 1, where the normal approximation
    gives intervals outside [0, 1]; (0, 1) when there is no trial.
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)
