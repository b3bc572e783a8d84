"""The example shop: its settings pass the checks, and its triggers queue what docs/example.md
says, driven through its own views (tests/example_walkthrough.py, in a subprocess with the
example's settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"


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


@pytest.fixture(scope="module")
def send_log(tmp_path_factory) -> list[dict]:
    result = run_example(str(ROOT / "tests" / "example_walkthrough.py"),
                         data_dir=tmp_path_factory.mktemp("shop"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_visitors_walk_through_the_shop_queues_each_trigger_once(send_log):
    """Sign-up, order (paid), ship, deliver, refund, a login from a new device, then a
    password reset (not a trigger: the app's drop-in form)."""
    assert [(email["trigger"], email["status"]) for email in send_log] == [
        ("welcome", "queued"),
        ("order_confirmation", "queued"),
        ("shipping_update", "queued"),
        ("review_request", "scheduled"),  # 7 days after delivery, cancelled when due
        ("order_refunded", "queued"),
        ("login_alert", "queued"),
        ("password_reset", "queued"),
    ]
    assert all(email["error"] == "" and email["language"] == "fr" for email in send_log)
    assert send_log[0]["to"] == ['"Zoé" <zoe@example.com>']
    assert send_log[-1]["to"] == ["zoe@example.com"]
    assert send_log[-1]["secret_keys"] == ["reset_url"]


def test_order_emails_reply_to_the_desk_speaking_the_customers_language(send_log):
    replies = {email["trigger"]: email["reply_to"] for email in send_log}
    assert replies["order_confirmation"] == ["Service client Demo Shop <sav@example.com>"]
    assert replies["order_refunded"] == ["Service client Demo Shop <sav@example.com>"]
    assert replies["shipping_update"] == []


DEMO_HISTORY = """
import json
from transactional_mail.models import Email, EmailTemplate, SuppressionHistory
shipping = EmailTemplate.objects.get(key="shipping_update", language="")
emails = Email.objects.filter(idempotency_key__startswith="demo:").order_by("pk")
print(json.dumps({
    "draft": [shipping.has_unpublished_changes, shipping.published_revision.number,
              shipping.current_revision.number, shipping.current_revision.note],
    "emails": [[e.status, e.is_test, e.attempts, bool(e.html_body),
                [a.outcome for a in e.attempt_log.order_by("number")]] for e in emails],
    "history": list(SuppressionHistory.objects.values_list("address", "change")),
}))
"""


def test_the_demo_data_shows_drafts_attempts_tests_and_suppressions(tmp_path):
    for _ in range(2):  # seeding twice adds nothing
        setup = run_example("manage.py", "demo", "--setup-only", data_dir=tmp_path)
        assert setup.returncode == 0, setup.stderr
    result = run_example("manage.py", "shell", "-c", DEMO_HISTORY, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["draft"][:3] == [True, 1, 2] and "review" in data["draft"][3]
    assert data["emails"] == [["sent", False, 2, True, ["transient", "sent"]],
                              ["sent", True, 1, True, ["sent"]]]
    assert data["history"] == [["old-address@example.com", "added"]]
