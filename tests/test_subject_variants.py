"""Subject A/B tests: variants on templates, one per email, kept across retries."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import delivery
from transactional_mail.models import Email
from transactional_mail.subject_variants import (
    choose_variant,
    variants,
    wilson_interval,
    with_subject,
)


def test_without_other_subjects_there_is_no_test():
    template = SimpleNamespace(subject="Hi", subject_weight=1, subject_b="", subject_b_weight=1,
                               subject_c="", subject_c_weight=1, subject_d="",
                               subject_d_weight=1)
    assert variants(template) == []
    assert choose_variant(123, template) == 0


def ab_template(weights=(1, 2, 1, 0)):
    return SimpleNamespace(
        subject="A {{ x }}", subject_weight=weights[0], subject_b="B", subject_b_weight=weights[1],
        subject_c="C", subject_c_weight=weights[2], subject_d="D", subject_d_weight=weights[3],
    )


def test_variants_are_spread_in_proportion_to_their_weights():
    """Over 30,000 email ids (a fixed seed), the shares of A, B and C match weights 1:2:1
    (Pearson's chi-squared below 13.8, p = 0.001 with two degrees of freedom); D, weight
    0, is paused and never chosen."""
    ids = random.Random(16).sample(range(1, 10**9), 30_000)
    template = ab_template()
    counts = {number: 0 for number in range(5)}
    for email_id in ids:
        counts[choose_variant(email_id, template)] += 1
    assert counts[0] == counts[4] == 0
    expected = {1: 7500, 2: 15000, 3: 7500}
    chi_squared = sum((counts[n] - e) ** 2 / e for n, e in expected.items())
    assert chi_squared < 13.8, counts
    # Consecutive ids too (what a database hands out).
    consecutive = [choose_variant(email_id, template) for email_id in range(1, 4001)]
    assert abs(consecutive.count(2) / 4000 - 0.5) < 0.03


def test_an_email_always_gets_the_same_variant():
    template = ab_template((1, 1, 1, 1))
    assert [choose_variant(n, template) for n in range(50)] == [
        choose_variant(n, template) for n in range(50)]


def test_a_variant_renders_under_a_cache_key_of_its_own():
    revision = SimpleNamespace(pk=7, subject="A", subject_c="C subject", preheader="",
                               html="<p>x</p>", text="")
    assert with_subject(revision, 1) is revision
    variant = with_subject(revision, 3)
    assert (variant.pk, variant.subject, variant.html) == ("7/subject-3", "C subject", "<p>x</p>")


@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),
])
def test_wilson_interval(successes, trials, low, high):
    assert wilson_interval(successes, trials) == (pytest.approx(low, abs=1e-4),
                                                  pytest.approx(high, abs=1e-4))


def test_wilson_interval_without_trials_says_nothing():
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.django_db
def test_a_variant_that_does_not_compile_is_refused_like_the_subject():
    with pytest.raises(ValidationError) as raised:
        make_template(subject_b="Hi {% if %}")
    assert "subject_b" in raised.value.message_dict


@pytest.mark.django_db
def test_a_test_needs_two_weighted_subjects():
    with pytest.raises(ValidationError, match="at least two subjects with a weight above 0"):
        make_template(subject_b="Other", subject_b_weight=0)


@pytest.mark.django_db
def test_each_email_gets_its_variant_and_keeps_it_on_a_retry(esp, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RETRY_BACKOFF": 1}
    make_template(subject="A: order {{ order.number }}", subject_b="B: order {{ order.number }}")
    subjects = {}
    for _ in range(16):
        email = transactional_mail.send("order_confirmation", "ann@example.com",
                                        ORDER_CONTEXT)
        esp.add_response(500)  # the first attempt fails, the retry sends
        delivery.deliver(email.pk)
        first = Email.objects.get(pk=email.pk)
        Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        delivery.deliver(email.pk)
        email.refresh_from_db()
        assert email.status == "sent"
        assert email.subject_variant == first.subject_variant == choose_variant(
            email.pk, email.template_revision)
        subjects[email.subject_variant] = email.subject
        [sent] = esp.accepted_for(email.pk)
        assert sent.json["Subject"] == email.subject
    assert subjects == {1: "A: order A-1001", 2: "B: order A-1001"}


@pytest.mark.django_db
def test_a_blank_weight_counts_as_one():
    template = make_template(subject_b="Other", subject_weight=None, subject_b_weight=None)
    assert (template.subject_weight, template.subject_b_weight) == (1, 1)
    assert template.current_revision.subject_b_weight == 1


@pytest.mark.django_db
def test_the_admin_form_edits_the_variants(admin_client):
    template = make_template(sample_context=ORDER_CONTEXT)
    data = {"key": template.key, "language": "", "subject": template.subject, "preheader": "",
            "html": template.html, "text": "", "category": "orders",
            "subject_weight": "3", "subject_b": "Still there? {{ order.number }}",
            "subject_b_weight": "1", "subject_c": "", "subject_c_weight": "1",
            "subject_d": "", "subject_d_weight": "1", "sample_context": "{}",
            "revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0"}
    url = f"/admin/transactional_mail/emailtemplate/{template.pk}/change/"
    assert admin_client.post(url, data).status_code == 302
    template.refresh_from_db()
    assert [(v.letter, v.weight) for v in variants(template)] == [("A", 3), ("B", 1)]
    bad = admin_client.post(url, {**data, "subject_c": "{% for %}"})
    assert bad.status_code == 200
    assert "subject_c" in bad.context["adminform"].form.errors
