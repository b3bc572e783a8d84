"""The statistics dashboard: numbers against a seeded log, filters, charts, A/B tests."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.admin_clients import staff_client
from tests.factories import make_template
from tests.stats_seed import ab_rows, seed_log
from transactional_mail.admin import charts
from transactional_mail.admin.dashboard import duration
from transactional_mail.admin.dashboard_queries import percentile
from transactional_mail.models import Email, EmailTemplate, MailStatDay

pytestmark = pytest.mark.django_db

URL = reverse("admin:transactional_mail_mailstatday_changelist")
PROMOTE_URL = reverse("admin:transactional_mail_mailstatday_promote")

@pytest.fixture
def viewer():
    return staff_client("viewer", ("view_email",))


def test_the_dashboard_shows_the_numbers_of_the_seeded_log(viewer):
    expected = seed_log()
    response = viewer.get(URL)
    assert response.status_code == 200
    totals = response.context["totals"]
    for counter in ("sent", "delivered", "bounced", "opened", "clicked", "complained"):
        assert totals[counter] == sum(row[counter] for row in expected.values()), counter
    groups = {row["key"]: row for row in response.context["groups"]}
    assert {key: groups[key]["sent"] for key in expected} == {
        key: row["sent"] for key, row in expected.items()}
    receipt = expected["receipt"]
    assert groups["receipt"]["rates"]["open"] == (
        f"{receipt['opened'] / receipt['delivered'] * 100:.1f} %")
    content = response.content.decode()
    assert f'data-counter="sent">{totals["sent"]}<' in content
    assert content.count("<svg") >= 3  # per day, rates, time to delivery
    assert "<script" not in content.split('id="content-main"')[1]  # no JavaScript charts
    # Each delivery took 1 to 900 s, so both percentiles are within 15 minutes.
    assert response.context["p95"] in {"≤ 2 s", "≤ 5 s", "≤ 1 min", "≤ 10 min", "≤ 30 min"}


def test_filters_narrow_the_numbers(viewer):
    expected = seed_log()
    response = viewer.get(URL, {"template": "review", "group": "category"})
    assert response.context["totals"]["sent"] == expected["review"]["sent"]
    assert [row["key"] for row in response.context["groups"]] == ["reviews"]
    no_trigger = viewer.get(URL, {"trigger": "-"})
    assert no_trigger.context["totals"]["sent"] == (
        expected["review"]["sent"] + expected["welcome"]["sent"])
    today = timezone.localdate()
    only_today = viewer.get(URL, {"start": today.isoformat(), "end": today.isoformat()})
    assert only_today.context["totals"]["sent"] == Email.objects.filter(
        created_at__date=today).count()


def test_a_bad_period_is_explained_and_the_default_shown(viewer):
    seed_log(30)
    response = viewer.get(URL, {"start": "2026-02-01", "end": "2026-01-01"})
    assert "The period starts after it ends" in response.content.decode()
    assert response.context["totals"]["sent"] == 30
    unknown = viewer.get(URL, {"template": "<script>alert(1)</script>"})
    assert unknown.status_code == 200
    assert "<script>alert(1)" not in unknown.content.decode()


def test_labels_are_escaped_in_tables_and_charts(viewer):
    MailStatDay.objects.create(day=timezone.localdate(), template_key="t",
                               category='<img src=x onerror="alert(1)">', sent=3, delivered=3)
    content = viewer.get(URL, {"group": "category"}).content.decode()
    assert "<img src=x" not in content
    assert "&lt;img src=x" in content


def test_the_dashboard_needs_the_logs_view_permission():
    assert staff_client("nobody").get(URL).status_code == 403
    assert staff_client("editor", ("change_emailtemplate",)).get(URL).status_code == 403
    index = staff_client("viewer", ("view_email",)).get(reverse("admin:index"))
    assert URL in index.content.decode()


def test_the_dashboard_adds_changes_and_deletes_nothing(viewer):
    row = MailStatDay.objects.create(day=timezone.localdate(), template_key="t", sent=1)
    admin = staff_client("root", ("view_email", "add_mailstatday", "change_mailstatday",
                                  "delete_mailstatday"))
    assert admin.get(reverse("admin:transactional_mail_mailstatday_add")).status_code == 403
    delete = reverse("admin:transactional_mail_mailstatday_delete", args=[row.pk])
    assert admin.post(delete, {"post": "yes"}).status_code == 403
    assert MailStatDay.objects.filter(pk=row.pk).exists()


def test_the_ab_test_shows_each_variants_rates_with_their_intervals(viewer):
    make_template("welcome", subject="Welcome", subject_b="You're in")
    ab_rows()
    response = viewer.get(URL, {"template": "welcome"})
    [a, b] = response.context["variants"]
    assert (a["letter"], a["subject"], b["letter"], b["subject"]) == (
        "A", "Welcome", "B", "You're in")
    assert b["open"]["rate"] == pytest.approx(300 / 985)
    assert b["open"]["low"] < b["open"]["rate"] < b["open"]["high"]
    assert b["open"]["leads"] and not a["open"]["leads"]
    assert not b["click"]["leads"]  # 2.0 % against 2.5 %: the intervals overlap
    content = response.content.decode()
    assert "30.5 % (27.7 %–33.4 %)" in content
    assert "Promote B" not in content  # a viewer may not change templates


def test_promoting_the_winner_makes_it_the_subject_of_a_new_draft():
    template = make_template("welcome", subject="Welcome", subject_b="You're in")
    published = template.published_revision_id
    ab_rows()
    editor = staff_client("editor", ("view_email", "change_emailtemplate"))
    assert "Promote B" in editor.get(URL, {"template": "welcome"}).content.decode()
    response = editor.post(PROMOTE_URL, {"template": "welcome", "variant": "2"}, follow=True)
    assert "is now the subject of a new draft of welcome" in response.content.decode()
    template.refresh_from_db()
    assert (template.subject, template.subject_b) == ("You're in", "")
    assert template.published_revision_id == published  # staff publish it when ready
    assert template.current_revision.note == "Subject variant B promoted (A/B test winner)."
    assert template.current_revision.created_by.username == "editor"


def test_promoting_needs_a_post_the_permission_and_an_existing_variant():
    make_template("welcome", subject="Welcome", subject_b="You're in")
    viewer = staff_client("viewer", ("view_email",))
    assert viewer.post(PROMOTE_URL, {"template": "welcome", "variant": "2"}).status_code == 403
    editor = staff_client("editor", ("view_email", "change_emailtemplate"))
    assert editor.get(PROMOTE_URL).status_code == 405
    response = editor.post(PROMOTE_URL, {"template": "welcome", "variant": "3"}, follow=True)
    assert "has a subject variant C any more" in response.content.decode()
    response = editor.post(PROMOTE_URL, {"template": "welcome", "variant": "9"}, follow=True)
    assert "Choose a variant from A to D" in response.content.decode()
    assert EmailTemplate.objects.get(key="welcome").subject == "Welcome"


def test_charts_escape_their_texts_and_draw_nothing_without_data():
    chart = charts.line_chart(["2026-01-01", "2026-01-02"], {"<b>sent</b>": [1, 2]}, "a<b")
    assert "<b>" not in chart and "&lt;b&gt;sent&lt;/b&gt;" in chart
    assert chart.count("<circle") == 2
    assert charts.line_chart([], {}, "x") == ""
    assert charts.histogram(["≤ 1 s"], [0], "x") == ""
    bars = charts.rate_bars([("B", 0.3, 0.25, 0.35), ("C", None, None, None)], "x")
    assert "30.0% (95 % CI 25.0%–35.0%)" in bars and "—" in bars


@pytest.mark.parametrize(("histogram", "share", "bound"), [
    ({}, 0.5, None),
    ({"ttd_1s": 50, "ttd_5s": 49, "ttd_60s": 1}, 0.5, 1),
    ({"ttd_1s": 50, "ttd_5s": 49, "ttd_60s": 1}, 0.95, 5),
    ({"ttd_1s": 50, "ttd_5s": 49, "ttd_60s": 1}, 1.0, 60),
    ({"ttd_1s": 1, "ttd_more": 9}, 0.5, -1),
])
def test_percentiles_are_the_bound_of_their_bucket(histogram, share, bound):
    assert percentile(histogram, share) == bound


@pytest.mark.parametrize(("seconds", "label"), [
    (None, "—"), (-1, "over a day"), (5, "≤ 5 s"), (120, "≤ 2 min"), (21600, "≤ 6 h"),
    (86400, "≤ 1 d")])
def test_durations_read_as_people_say_them(seconds, label):
    assert duration(seconds) == label


def test_promoting_needs_the_csrf_token():
    from django.contrib.auth.models import User
    from django.test import Client

    make_template("welcome", subject="Welcome", subject_b="You're in")
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(PROMOTE_URL, {"template": "welcome", "variant": "2"}).status_code == 403
    assert EmailTemplate.objects.get(key="welcome").subject == "Welcome"


def test_the_page_reads_a_fixed_number_of_queries(viewer, django_assert_max_num_queries):
    """However many days, templates and variants: the filters' choices, the totals, the
    days, the groups, the variants and the template of the test (plus the session's)."""
    seed_log(60)
    make_template("welcome", subject="Welcome", subject_b="You're in")
    ab_rows()
    with django_assert_max_num_queries(12):
        response = viewer.get(URL, {"template": "welcome", "start": "2020-01-01"})
    assert response.context["variants"]
