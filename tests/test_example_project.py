"""The example shop: its settings pass the checks, its triggers queue what docs/example.md
says and a real worker sends the starter templates with every variable they use, driven
through its own views (tests/example_walkthrough.py, in a subprocess with the example's
settings); its flash messages and send log say what happened (tests/example_slips.py);
its weekly order report and comment digest queue what they should
(tests/example_scheduled.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
WALKTHROUGH = ROOT / "tests" / "example_walkthrough.py"


def run_example(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHOP_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(ROOT)])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, *args], cwd=EXAMPLE, env=env, capture_output=True,
                          text=True, timeout=120)


def test_example_settings_pass_every_check(tmp_path):
    result = run_example("manage.py", "check", "--fail-level", "WARNING", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def worker_until_sent(data_dir: Path, timeout: float = 90) -> None:
    """Run the shop's real ``celery worker`` on the walk's broker and database until no
    email of the walk is waiting for it (queued or sending) and the password reset (a
    task the reset box queued) is written; then stop it."""
    env = {**os.environ, "SHOP_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(ROOT)]),
           # Django's in-memory backend: the worker renders and "sends" each email.
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = open(data_dir / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shop_site", "worker", "-P", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
        cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    database = data_dir / "db.sqlite3"

    def done() -> bool:
        with sqlite3.connect(database, timeout=20) as connection:
            waiting, resets = connection.execute(
                "SELECT SUM(status IN ('queued', 'sending')), SUM(template_key = "
                "'password_reset') FROM transactional_mail_email").fetchone()
        return waiting == 0 and resets == 1

    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert worker.poll() is None, (data_dir / "worker.log").read_text()
            assert time.monotonic() < deadline, (data_dir / "worker.log").read_text()
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def walk(tmp_path_factory) -> dict:
    """The visitor's walk (tests/example_walkthrough.py), the worker's sending, and the
    send log with the templates' missing variables."""
    data_dir = tmp_path_factory.mktemp("shop")
    walked = run_example(str(WALKTHROUGH), "walk", data_dir=data_dir)
    assert walked.returncode == 0, walked.stderr
    worker_until_sent(data_dir)
    result = run_example(str(WALKTHROUGH), "log", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_visitors_walk_through_the_shop_sends_each_trigger_once(walk):
    """Sign-up, order (paid), ship, deliver, refund, a login from a new device, then a
    password reset (not a trigger: the app's drop-in form) and the invoice emailed again
    by staff (a direct send()); a real worker sends each
    starter template in the customer's language (French), the review request stays
    scheduled (7 days after delivery, cancelled when due)."""
    send_log = walk["emails"]
    assert [(email["trigger"], email["template"], email["status"]) for email in send_log] == [
        ("welcome", "welcome", "sent"),
        ("order_confirmation", "order_confirmation", "sent"),
        ("shipping_update", "shipping_update", "sent"),
        ("review_request", "review_request", "scheduled"),
        ("order_refunded", "refund", "sent"),
        ("login_alert", "new_sign_in", "sent"),
        ("invoice", "invoice", "sent"),  # staff's "email the invoice again": a send()
        ("password_reset", "password_reset", "sent"),  # written by the worker's task
    ]
    assert all(email["error"] == "" and email["language"] == "fr" for email in send_log)
    assert [email["rendered_in"] for email in send_log if email["status"] == "sent"] == [
        "fr"] * 7
    assert [email["french_footer"] for email in send_log if email["status"] == "sent"] == [
        True] * 7
    assert send_log[0]["to"] == ['"Zoé" <zoe@example.com>']
    assert send_log[0]["subject"] == "Bienvenue sur Demo Shop"
    assert send_log[7]["to"] == ["zoe@example.com"]
    assert send_log[7]["secret_keys"] == ["reset_url"]
    # The seed's eight past orders (for the weekly report) come first.
    assert send_log[1]["attachments"] == send_log[6]["attachments"] == ["invoice-A00009.pdf"]
    # The triggers' own categories, not the starters' (welcome's is "onboarding").
    assert [email["category"] for email in send_log[:6]] == [
        "account", "orders", "orders", "reviews", "orders", "security"]
    assert send_log[6]["category"] == "orders"
    # The few words the shop writes itself are in the email's language too.
    assert send_log[4]["context"]["refund"]["method"] == "votre carte de paiement"
    assert send_log[6]["context"]["invoice"]["payment_method"] == "Carte bancaire"


def test_every_variable_of_each_triggers_template_is_in_the_context_the_shop_builds(walk):
    """Each trigger's template (and the invoice's), in all five languages, rendered for a
    real object of the walk: no variable it uses is missing from the context, and every
    key its starter calls secret is marked so in the trigger's secret_keys."""
    # The shop's own comment_digest is written in English only (the default template).
    languages = {key: ("default",) if key == "comment_digest"
                 else ("default", "fr", "de", "it", "ar") for key in walk["missing"]}
    assert walk["templates"] == {key: len(languages[key]) for key in walk["missing"]}
    assert walk["missing"] == {
        key: {language: [] for language in languages[key]} for key in walk["missing"]}
    assert walk["unmarked_secrets"] == {key: [] for key in walk["unmarked_secrets"]}
    assert set(walk["missing"]) == {"welcome", "order_confirmation", "shipping_update",
                                    "review_request", "order_refunded", "login_alert",
                                    "comment_digest", "invoice (admin action)"}


def test_order_emails_reply_to_the_desk_speaking_the_customers_language(walk):
    replies = {email["trigger"]: email["reply_to"] for email in walk["emails"]}
    assert replies["order_confirmation"] == ["Service client Demo Shop <sav@example.com>"]
    assert replies["order_refunded"] == ["Service client Demo Shop <sav@example.com>"]
    assert replies["shipping_update"] == []


@pytest.fixture(scope="module")
def said(tmp_path_factory) -> dict:
    """What the shop's flash messages and send log said (tests/example_slips.py)."""
    result = run_example(str(ROOT / "tests" / "example_slips.py"),
                         data_dir=tmp_path_factory.mktemp("slips"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_signing_up_says_the_welcome_email_is_queued_only_when_it_is(said):
    assert said["signup"] == ["Welcome, Max: your welcome email is queued."]
    assert said["signup, welcome off"] == [
        "Welcome, Lin: your welcome email is not sent (its trigger is switched off)."]


def test_order_messages_say_what_the_request_queued(said):
    """Placed, shipped, delivered: an email is said to be queued (or scheduled) only when
    the request wrote one; a trigger switched off is said so."""
    number = re.compile(r"A\d{5}")
    assert [number.sub("N", message) for message in said["ship, shipping update off"]] == [
        "Order N shipped: its shipping update is not sent (its trigger is switched off)."]
    assert [number.sub("N", message) for message in said["deliver, review request off"]] == [
        "Order N delivered: its review request is not sent (its trigger is switched off)."]
    assert [number.sub("N", message) for message in said["order, confirmation off"]] == [
        "Order N placed: its confirmation email is not sent (its trigger is switched off), "
        "and your welcome email is queued."]
    assert [number.sub("N", message) for message in said["order"]] == [
        "Order N placed: its confirmation email is queued, and your welcome email is queued."]
    assert [number.sub("N", message) for message in said["ship"]] == [
        "Order N shipped: its shipping update is queued."]
    assert [re.sub(r"\d\d:\d\d:\d\d", "T", number.sub("N", message))
            for message in said["deliver"]] == [
        "Order N delivered: its review request is scheduled for T UTC."]


def test_a_refund_mentions_the_review_request_only_when_one_is_pending(said):
    number = re.compile(r"A\d{5}")
    assert [number.sub("N", message)
            for message in said["refund, no review request pending"]] == [
        "Order N refunded: its refund email is queued."]
    assert [number.sub("N", message) for message in said["refund, review request pending"]] == [
        "Order N refunded: its refund email is queued, and its scheduled review request will "
        "be cancelled when it is due."]


def test_the_send_log_labels_each_email_with_the_language_it_was_rendered_in(said):
    assert said["labels"] == {
        "asked fr, rendered default": "shipping_update [default]",
        "asked fr, rendered fr": "order_confirmation [fr]",
        "not rendered yet": "refund",
    }


DEMO_HISTORY = """
import json
from transactional_mail.models import Email, EmailTemplate, Layout, SuppressionHistory
shipping = EmailTemplate.objects.get(key="shipping_update", language="")
emails = Email.objects.filter(idempotency_key__startswith="demo:").order_by("pk")
layout = Layout.objects.get()
print(json.dumps({
    "draft": [shipping.has_unpublished_changes, shipping.published_revision.number,
              shipping.current_revision.number, shipping.current_revision.note],
    "emails": [[e.status, e.is_test, e.attempts, bool(e.html_body), e.template_key,
                e.context["site_name"], "Demo Shop" in e.html_body,
                [a.outcome for a in e.attempt_log.order_by("number")]] for e in emails],
    "history": list(SuppressionHistory.objects.values_list("address", "change")),
    "templates": sorted({(t.key, t.language or "default", t.layout.name)
                         for t in EmailTemplate.objects.select_related("layout")}),
    "layout": [layout.name, layout.published_revision.footer_html,
               layout.published_revision.footer_address, layout.published_revision.legal_text,
               layout.published_revision.help_url, layout.published_revision.logo_url,
               sorted(layout.published_revision.translations)],
    "layout_html": layout.published_revision.html,
}))
"""

# Staff rewrite the legal text and publish it, between two starts of the demo.
STAFF_EDITS_THE_LAYOUT = """
from transactional_mail.models import Layout
layout = Layout.objects.get(name="Default")
layout.legal_text = "Edited by staff."
layout.save()
layout.publish()
"""


def test_the_demo_data_shows_drafts_attempts_tests_and_suppressions(tmp_path):
    for _ in range(2):  # seeding twice adds nothing
        setup = run_example("manage.py", "demo", "--setup-only", data_dir=tmp_path)
        assert setup.returncode == 0, setup.stderr
    result = run_example("manage.py", "shell", "-c", DEMO_HISTORY, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["draft"][:3] == [True, 1, 2] and "review" in data["draft"][3]
    assert data["emails"] == [
        ["sent", False, 2, True, "order_confirmation", "Demo Shop", True, ["transient", "sent"]],
        ["sent", True, 1, True, "order_confirmation", "Demo Shop", True, ["sent"]]]
    assert data["history"] == [["old-address@example.com", "added"]]


def test_make_demo_installs_every_starter_in_every_language_in_the_branded_layout(tmp_path):
    """The starters (18 kinds, default English and four languages) and the shop's own
    comment_digest in the layout named Default, branded as the shop (the footer in French
    and German too, its unsubscribe line kept); a restart keeps what staff changed in the
    layout since."""
    setup = run_example("manage.py", "demo", "--setup-only", data_dir=tmp_path)
    assert setup.returncode == 0, setup.stderr
    assert "starter templates (18 kinds in en, fr, de, it, ar): 90 created" in setup.stdout
    assert "the Demo Shop brand in layout 'Default'" in setup.stdout
    result = run_example("manage.py", "shell", "-c", DEMO_HISTORY, data_dir=tmp_path)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(data["templates"]) == 91  # and the shop's own comment_digest
    assert {language for _key, language, _layout in data["templates"]} == {
        "default", "fr", "de", "it", "ar"}
    assert {layout for _key, _language, layout in data["templates"]} == {"Default"}
    name, footer, address, legal, help_url, logo, translations = data["layout"]
    # The shipped footer with the shop's name: non-essential mail keeps its unsubscribe line.
    assert footer.startswith("<p>Demo Shop</p>") and "{{ unsubscribe_url }}" in footer
    assert (name, address) == ("Default", "Demo Shop\n1 Example Street\nSpringfield")
    assert legal.startswith("You get this email because") and help_url.endswith("/#help")
    assert logo.endswith("/static/shop/logo.png") and translations == ["de", "fr"]
    # {{ brand.name }} would say "Default" (the layout's name, which the installer needs).
    assert "<title>Demo Shop</title>" in data["layout_html"]
    assert 'alt="Demo Shop"' in data["layout_html"] and "brand.name" not in data["layout_html"]

    edited = run_example("manage.py", "shell", "-c", STAFF_EDITS_THE_LAYOUT, data_dir=tmp_path)
    assert edited.returncode == 0, edited.stderr
    again = run_example("manage.py", "demo", "--setup-only", data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Seeded" not in again.stdout  # nothing created, nothing rebranded
    result = run_example("manage.py", "shell", "-c", DEMO_HISTORY, data_dir=tmp_path)
    assert json.loads(result.stdout.strip().splitlines()[-1])["layout"][3] == "Edited by staff."


@pytest.fixture(scope="module")
def weekly_report(tmp_path_factory) -> dict:
    """``run_schedule weekly_order_report`` run twice on the demo's data, with staff of
    every kind (tests/example_scheduled.py)."""
    result = run_example(str(ROOT / "tests" / "example_scheduled.py"), "report",
                         data_dir=tmp_path_factory.mktemp("report"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_weekly_report_queues_one_email_per_active_staff_member_with_an_address(
        weekly_report):
    """The admin and Grace, by primary key; not the inactive staff member, the one
    without an address, nor the customer; in the non-essential "reports" category. The
    second run finds the period done and queues nothing."""
    emails = weekly_report["emails"]
    assert [(email["to"], email["template"], email["category"], email["status"])
            for email in emails] == [
        (["admin@example.com"], "weekly_report", "reports", "queued"),
        (["grace@example.com"], "weekly_report", "reports", "queued")]
    assert [email["context"]["user"] for email in emails] == [
        {"name": "admin"}, {"name": "Grace Hopper"}]
    assert weekly_report["runs"][0] == "2 recipient(s): queued 2, already queued 0, skipped 0."
    assert weekly_report["runs"][1].endswith("was already done: nothing to queue.")


def test_the_weekly_report_context_is_last_weeks_orders_against_the_week_before(
        weekly_report):
    """The seed's past orders: five in the reported week (one since refunded), three the
    week before; the same numbers for every reader; every variable of the starter, in
    every language, is in the context."""
    first, second = (email["context"] for email in weekly_report["emails"])
    assert {**first, "user": None} == {**second, "user": None}
    assert first["metrics"] == [
        {"label": "Orders", "value": "5", "change": "+67%"},
        {"label": "Revenue", "value": "$114.00", "change": "+178%"},
        {"label": "Average order value", "value": "$22.80", "change": "+67%"},
        {"label": "New customers", "value": "0", "change": ""},
        {"label": "Refunds", "value": "1", "change": ""},
    ]
    assert first["highlights"] == [
        "Top products: Sticker pack (4 sold), Logo mug (3 sold), T-shirt (3 sold).",
        "1 order refunded ($12.00)."]
    start, end = (date.fromisoformat(first["period"][name]) for name in ("start", "end"))
    assert (end - start).days == 6 and end.weekday() == 6  # Monday to Sunday
    assert first["report_url"].endswith(  # the week's orders in the admin
        f"/admin/shop/order/?created_at__gte={start}&created_at__lt={end + timedelta(1)}")
    assert weekly_report["missing"] == {language: [] for language in
                                        ("default", "fr", "de", "it", "ar")}
    assert "Orders: 5 (+67% vs last week)" in weekly_report["emails"][1]["text"]
    assert all(email["unsubscribe_link"] for email in weekly_report["emails"])
    assert weekly_report["emails"][1]["text"].startswith("Hello Grace Hopper,")


def test_migrate_installs_the_weekly_reports_beat_row_monday_8_in_the_shops_zone(
        weekly_report):
    assert weekly_report["beat"] == {
        "task": "transactional_mail.run_schedule", "enabled": True,
        "kwargs": {"key": "weekly_order_report"},
        "crontab": ["0", "8", "mon", "America/Chicago"]}


@pytest.fixture(scope="module")
def comment_digest(tmp_path_factory) -> dict:
    """Customers comment on the mug through the shop's view; the digest windows are
    closed as the beat task closes them (tests/example_scheduled.py)."""
    result = run_example(str(ROOT / "tests" / "example_scheduled.py"), "comments",
                         data_dir=tmp_path_factory.mktemp("comments"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_windows_first_comment_goes_at_once_and_the_next_ones_wait(comment_digest):
    """Camille's first comment reaches Ada at once and opens Ada's window; her next two
    wait in it. Ada's comment reaches Camille at once. A comment nobody else followed
    notifies nobody (and logs no failed email); a stranger's address is refused."""
    said = comment_digest["said"]
    assert said["camille first"] == ["Comment on Logo mug posted: 1 email queued at once."]
    assert said["camille again"] == said["camille third"] == [
        "Comment on Logo mug posted: 1 recipient will get it in their digest (1h window)."]
    assert said["ada"] == ["Comment on Logo mug posted: 1 email queued at once."]
    assert said["stickers, nobody else"] == [
        "Comment on Sticker pack posted: nobody else commented on it yet, so nobody is "
        "notified."]
    assert said["a stranger"] == [
        400, ["No customer has this address: place an order or sign up first."]]
    assert comment_digest["at_once"] == 2
    assert comment_digest["open_windows"] == [
        ['"Ada Lovelace" <ada@example.com>', 3, 2],
        ['"Camille Dubois" <camille@example.com>', 1, 0]]


def test_one_digest_goes_out_when_the_window_closes_and_only_once(comment_digest):
    """Nothing is due before the window's end; then Ada's window closes into one email
    with both waiting comments, Camille's (its only comment sent at once) into none, and
    a second sweep sends nothing. Every email is non-essential ("activity")."""
    assert comment_digest["sweeps"] == [0, 1, 0]
    emails = comment_digest["emails"]
    assert [(email["to"], email["count"], email["digest"]) for email in emails] == [
        (['"Ada Lovelace" <ada@example.com>'], 1, False),
        (['"Camille Dubois" <camille@example.com>'], 1, False),
        (['"Ada Lovelace" <ada@example.com>'], 2, True)]
    assert {(email["category"], email["status"]) for email in emails} == {
        ("activity", "queued")}
    digest = emails[2]
    assert digest["titles"] == ["Camille Dubois commented on Logo mug"] * 2
    assert digest["subject"] == "2 new comments on products you commented on"
    assert "Answering myself: it does." in digest["text"]
    # A customer's text is data: escaped in the HTML part, as it is in the text part.
    assert "Thanks &lt;b&gt;Ada&lt;/b&gt;!" in digest["html"] and "<b>Ada" not in digest["html"]
    assert "Thanks <b>Ada</b>!" in digest["text"]
    assert emails[0]["subject"] == "New comment on Logo mug"
    assert all(email["unsubscribe_link"] for email in emails)  # in the layout's footer
    assert "<title>Demo Shop</title>" in digest["html"] and 'alt="Demo Shop"' in digest["html"]
    assert comment_digest["missing"] == {"default": []}


def test_the_demos_file_broker_never_shows_a_worker_a_half_written_message(tmp_path,
                                                                            monkeypatch):
    """A worker polling while another process publishes (a digest closing, a sweep) finds
    no message until it is whole: kombu's own filesystem transport hands over the empty
    file it has just created, and the worker stops on the JSON error."""
    from queue import Empty

    from kombu import Connection

    monkeypatch.syspath_prepend(str(EXAMPLE))
    from shop_site import broker

    folder = tmp_path / "queue"
    folder.mkdir()
    connection = Connection("filesystem://localhost//", transport=broker.Transport,
                            transport_options={"data_folder_in": str(folder),
                                               "data_folder_out": str(folder)})
    channel = connection.channel()
    seen_while_writing = []

    def dumps_while_a_worker_polls(payload):
        try:
            seen_while_writing.append(channel._get("celery"))
        except Empty:
            seen_while_writing.append("nothing yet")
        return json.dumps(payload)

    monkeypatch.setattr(broker, "dumps", dumps_while_a_worker_polls)
    channel._put("celery", {"task": "transactional_mail.deliver"})
    assert seen_while_writing == ["nothing yet"]
    assert channel._get("celery") == {"task": "transactional_mail.deliver"}
    connection.release()
