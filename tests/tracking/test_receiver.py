"""Tracking webhooks (Anymail's views, every ESP) -> EmailEvent, status, suppressions."""

from __future__ import annotations

from unittest import mock

import anymail
import pytest
from django.db import OperationalError, transaction
from django.utils import timezone

import transactional_mail
from tests import esp_webhooks as hooks
from tests.esp_server import (
    bounce_event,
    click_event,
    delivery_event,
    open_event,
    post_webhook,
    spam_complaint_event,
)
from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import delivery
from transactional_mail.models import Email, EmailEvent, EmailStatus, Suppression
from transactional_mail.tracking import receiver, recipient_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_email(esp):
    make_template()
    email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT,
                                    category="orders")
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    return email


def status_of(email) -> str:
    return Email.objects.get(pk=email.pk).status


def test_delivery_event_moves_sent_to_delivered(client, sent_email):
    assert post_webhook(client, delivery_event(sent_email)).status_code == 200
    assert status_of(sent_email) == EmailStatus.DELIVERED
    [event] = sent_email.events.all()
    assert event.event_type == "delivered"
    assert event.recipient == "ann@example.com"
    assert event.event_id.startswith("sha256:")  # Postmark delivery events carry no id
    assert event.raw["RecordType"] == "Delivery"


def test_the_same_webhook_twice_is_stored_once(client, sent_email):
    payload = bounce_event(sent_email)
    post_webhook(client, payload)
    post_webhook(client, payload)
    delivered = delivery_event(sent_email)
    post_webhook(client, delivered)
    post_webhook(client, delivered)
    assert EmailEvent.objects.filter(email=sent_email).count() == 2


def test_wrong_secret_changes_nothing(client, sent_email):
    response = post_webhook(client, bounce_event(sent_email), secret="hook:wrong")
    assert response.status_code in (400, 401, 403)
    assert EmailEvent.objects.count() == 0
    assert Suppression.objects.count() == 0
    assert status_of(sent_email) == EmailStatus.SENT


def test_hard_bounce_suppresses_the_address_and_later_sends(client, sent_email, esp):
    post_webhook(client, bounce_event(sent_email, type="HardBounce"))
    assert status_of(sent_email) == EmailStatus.BOUNCED
    suppression = Suppression.objects.get(address="ann@example.com")
    assert suppression.category == ""
    assert suppression.reason == "hard_bounce"
    assert suppression.email_id == sent_email.pk

    esp.reset()
    again = transactional_mail.send("order_confirmation", "Ann@Example.com", ORDER_CONTEXT)
    assert delivery.deliver(again.pk).status == EmailStatus.SUPPRESSED
    assert esp.requests == []


def test_soft_bounce_is_not_a_hard_bounce(client, sent_email):
    """Anymail normalises Postmark's SoftBounce to 'bounced'; the raw Type says otherwise."""
    post_webhook(client, bounce_event(sent_email, type="SoftBounce"))
    assert Suppression.objects.count() == 0
    assert status_of(sent_email) == EmailStatus.DEFERRED
    event = EmailEvent.objects.get()
    assert event.event_type == "bounced"
    assert event.hard_bounce is False


def test_complaint_suppresses_and_is_the_final_status(client, sent_email):
    post_webhook(client, spam_complaint_event(sent_email))
    assert status_of(sent_email) == EmailStatus.COMPLAINED
    assert Suppression.objects.get().reason == "complaint"


def test_late_delivered_never_overwrites_bounced(client, sent_email):
    post_webhook(client, bounce_event(sent_email))
    post_webhook(client, delivery_event(sent_email))
    assert status_of(sent_email) == EmailStatus.BOUNCED
    assert sent_email.events.count() == 2


def test_out_of_order_events_end_on_the_furthest_status(client, sent_email):
    post_webhook(client, open_event(sent_email))
    post_webhook(client, delivery_event(sent_email))
    post_webhook(client, bounce_event(sent_email, type="SoftBounce"))  # deferred < delivered
    assert status_of(sent_email) == EmailStatus.DELIVERED


def test_opens_and_clicks_are_engagement_not_status(client, sent_email):
    post_webhook(client, open_event(sent_email))
    post_webhook(client, click_event(sent_email, url="https://shop.example.com/o/1"))
    assert status_of(sent_email) == EmailStatus.SENT
    assert list(sent_email.events.values_list("event_type", flat=True)) == ["opened", "clicked"]
    assert sent_email.events.get(event_type="clicked").click_url == "https://shop.example.com/o/1"


def test_webhook_reconciles_an_uncertain_send(client, esp, settings):
    """A timed-out send queued for retry is marked delivered by the webhook, not resent."""
    make_template()
    email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
    esp.add_response(504)
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED and email.outcome_uncertain
    post_webhook(client, delivery_event(email, message_id="esp-id-from-webhook"))
    email.refresh_from_db()
    assert email.status == EmailStatus.DELIVERED
    assert email.esp_message_id == "esp-id-from-webhook"
    Email.objects.filter(pk=email.pk).update(next_attempt_at=email.created_at)
    assert delivery.deliver(email.pk).status is None
    assert len(esp.requests) == 1


def test_event_for_an_unknown_message_is_kept_without_an_email(client):
    payload = delivery_event(None, recipient="x@example.com", message_id="unknown-id")
    assert post_webhook(client, payload).status_code == 200
    event = EmailEvent.objects.get()
    assert event.email is None
    assert event.esp_message_id == "unknown-id"


def test_email_found_by_message_id_without_metadata(client, sent_email):
    payload = delivery_event(sent_email)
    payload["Metadata"] = {}
    post_webhook(client, payload)
    assert status_of(sent_email) == EmailStatus.DELIVERED


# --- Every ESP's raw event kinds, through Anymail's own tracking views ---------------------

ADDRESS = "ann@example.com"


@pytest.fixture
def webhooks(settings):
    """Every ESP's webhook keys in ANYMAIL, so each ESP's view authenticates our posts."""
    settings.ANYMAIL = hooks.webhook_settings(settings.ANYMAIL)


def sent_to(*addresses: str, category: str = "orders") -> Email:
    """An email the ESP accepted, its ESP message id a number (Mailjet's and Postal's are)."""
    if not transactional_mail.models.EmailTemplate.objects.filter(
        key="order_confirmation"
    ).exists():
        make_template()
    email = transactional_mail.send("order_confirmation", list(addresses), ORDER_CONTEXT,
                                    category=category)
    Email.objects.filter(pk=email.pk).update(status=EmailStatus.SENT,
                                             esp_message_id=str(900_000 + email.pk))
    email.refresh_from_db()
    return email


def ids(email) -> dict:
    return {"message_id": email.esp_message_id,
            "metadata": {"transactional_mail_id": str(email.pk)}}


def one(esp_builder, *args, **kwargs):
    """A builder of one event for the email's single recipient."""
    def build(email):
        return esp_builder(*args, **ids(email), recipient=ADDRESS, **kwargs)
    return build


def ses(kind, **kwargs):
    def build(email):
        return hooks.ses_event(kind, **ids(email), recipients=[ADDRESS], **kwargs)
    return build


def resend(type_, **kwargs):
    def build(email):
        return hooks.resend(type_, **ids(email), to=[ADDRESS], **kwargs)
    return build


HARD, COMPLAINT, UNSUB = "hard_bounce", "complaint", "unsubscribe"
S = EmailStatus

#: (ESP raw kind, webhook, the email's status after it, the suppression it adds)
ESP_CASES = [
    ("Amazon SES Bounce/Permanent", ses("Bounce"), S.BOUNCED, HARD),
    ("Amazon SES Bounce/Permanent OnAccountSuppressionList",
     ses("Bounce", bounce_sub_type="OnAccountSuppressionList"), S.BOUNCED, HARD),
    ("Amazon SES Bounce/Transient MailboxFull",
     ses("Bounce", bounce_type="Transient", bounce_sub_type="MailboxFull"), S.DEFERRED, None),
    ("Amazon SES Bounce/Undetermined",
     ses("Bounce", bounce_type="Undetermined", bounce_sub_type="Undetermined"),
     S.BOUNCED, None),
    ("Amazon SES Complaint", ses("Complaint"), S.COMPLAINED, COMPLAINT),
    ("Amazon SES Delivery", ses("Delivery"), S.DELIVERED, None),
    ("Amazon SES DeliveryDelay", ses("DeliveryDelay"), S.DEFERRED, None),
    ("Amazon SES Reject", ses("Reject"), S.BOUNCED, None),
    ("Amazon SES Open", ses("Open"), S.SENT, None),
    ("Postmark Bounce/HardBounce", one(hooks.postmark_bounce, "HardBounce", inactive=True),
     S.BOUNCED, HARD),
    ("Postmark Bounce/ManuallyDeactivated", one(hooks.postmark_bounce, "ManuallyDeactivated"),
     S.BOUNCED, HARD),
    ("Postmark Bounce/BadEmailAddress", one(hooks.postmark_bounce, "BadEmailAddress"),
     S.BOUNCED, HARD),
    ("Postmark Bounce/SoftBounce", one(hooks.postmark_bounce, "SoftBounce"), S.DEFERRED, None),
    ("Postmark Bounce/SoftBounce Inactive", one(hooks.postmark_bounce, "SoftBounce",
                                                inactive=True), S.BOUNCED, HARD),
    ("Postmark Bounce/Transient", one(hooks.postmark_bounce, "Transient"), S.DEFERRED, None),
    ("Postmark Bounce/DnsError", one(hooks.postmark_bounce, "DnsError"), S.DEFERRED, None),
    ("Postmark Bounce/Blocked", one(hooks.postmark_bounce, "Blocked"), S.BOUNCED, None),
    ("Postmark Bounce/DMARCPolicy", one(hooks.postmark_bounce, "DMARCPolicy"), S.BOUNCED, None),
    ("Postmark Bounce/AutoResponder", one(hooks.postmark_bounce, "AutoResponder"), S.SENT, None),
    ("Postmark SpamComplaint", one(hooks.postmark_bounce, "SpamComplaint", inactive=True,
                                   record_type="SpamComplaint"), S.COMPLAINED, COMPLAINT),
    ("Postmark SubscriptionChange/HardBounce",
     one(hooks.postmark_subscription_change, "HardBounce"), S.SENT, HARD),
    ("Postmark SubscriptionChange/ManualSuppression",
     one(hooks.postmark_subscription_change, "ManualSuppression"), S.SENT, UNSUB),
    ("Postmark SubscriptionChange reactivated",
     one(hooks.postmark_subscription_change, None, suppress=False), S.SENT, None),
    ("Brevo hard_bounce", one(hooks.brevo, "hard_bounce"), S.BOUNCED, HARD),
    ("Brevo soft_bounce", one(hooks.brevo, "soft_bounce"), S.DEFERRED, None),
    ("Brevo invalid_email", one(hooks.brevo, "invalid_email"), S.BOUNCED, HARD),
    ("Brevo blocked", one(hooks.brevo, "blocked"), S.BOUNCED, HARD),
    ("Brevo deferred", one(hooks.brevo, "deferred"), S.DEFERRED, None),
    ("Brevo spam", one(hooks.brevo, "spam"), S.COMPLAINED, COMPLAINT),
    ("Brevo unsubscribe", one(hooks.brevo, "unsubscribe"), S.SENT, UNSUB),
    ("Brevo error", one(hooks.brevo, "error"), S.BOUNCED, None),
    ("MailerSend hard_bounced", one(hooks.mailersend, "hard_bounced"), S.BOUNCED, HARD),
    ("MailerSend soft_bounced", one(hooks.mailersend, "soft_bounced"), S.DEFERRED, None),
    ("MailerSend spam_complaint", one(hooks.mailersend, "spam_complaint"),
     S.COMPLAINED, COMPLAINT),
    ("MailerSend delivered", one(hooks.mailersend, "delivered"), S.DELIVERED, None),
    ("Mailgun failed/permanent/bounce",
     one(hooks.mailgun, "failed", severity="permanent", reason="bounce"), S.BOUNCED, HARD),
    ("Mailgun failed/permanent/suppress-bounce",
     one(hooks.mailgun, "failed", severity="permanent", reason="suppress-bounce"),
     S.BOUNCED, HARD),
    ("Mailgun failed/permanent/suppress-complaint",
     one(hooks.mailgun, "failed", severity="permanent", reason="suppress-complaint"),
     S.BOUNCED, COMPLAINT),
    ("Mailgun failed/permanent/old",
     one(hooks.mailgun, "failed", severity="permanent", reason="old"), S.BOUNCED, None),
    ("Mailgun failed/temporary/generic",
     one(hooks.mailgun, "failed", severity="temporary", reason="generic"), S.DEFERRED, None),
    ("Mailgun delivered", one(hooks.mailgun, "delivered"), S.DELIVERED, None),
    ("Mailjet bounce hard_bounce", one(hooks.mailjet, "bounce", hard_bounce=True,
                                       error="user unknown"), S.BOUNCED, HARD),
    ("Mailjet bounce soft", one(hooks.mailjet, "bounce", hard_bounce=False,
                                error="quota exceeded"), S.DEFERRED, None),
    ("Mailjet bounce greylisted", one(hooks.mailjet, "bounce", hard_bounce=False,
                                      error="greylisted", related_to="domain"),
     S.DEFERRED, None),
    ("Mailjet blocked/user unknown", one(hooks.mailjet, "blocked", error="user unknown"),
     S.BOUNCED, HARD),
    ("Mailjet blocked/preblocked", one(hooks.mailjet, "blocked", error="preblocked",
                                       related_to="mailjet"), S.BOUNCED, HARD),
    ("Mailjet blocked/spam reporter", one(hooks.mailjet, "blocked", error="spam reporter"),
     S.BOUNCED, COMPLAINT),
    ("Mailjet blocked/content blocked", one(hooks.mailjet, "blocked", error="content blocked",
                                            related_to="spam"), S.BOUNCED, None),
    ("Mailjet sent", one(hooks.mailjet, "sent"), S.DELIVERED, None),
    ("Mailtrap bounce", one(hooks.mailtrap, "bounce"), S.BOUNCED, HARD),
    ("Mailtrap soft bounce", one(hooks.mailtrap, "soft bounce"), S.DEFERRED, None),
    ("Mailtrap reject", one(hooks.mailtrap, "reject"), S.BOUNCED, HARD),
    ("Mailtrap suspension", one(hooks.mailtrap, "suspension"), S.DEFERRED, None),
    ("Mailtrap delivery", one(hooks.mailtrap, "delivery"), S.DELIVERED, None),
    ("Mandrill hard_bounce", one(hooks.mandrill, "hard_bounce"), S.BOUNCED, HARD),
    ("Mandrill soft_bounce", one(hooks.mandrill, "soft_bounce"), S.DEFERRED, None),
    ("Mandrill reject", one(hooks.mandrill, "reject"), S.BOUNCED, None),
    ("Mandrill spam", one(hooks.mandrill, "spam"), S.COMPLAINED, COMPLAINT),
    ("Mandrill deferral", one(hooks.mandrill, "deferral"), S.DEFERRED, None),
    ("Postal MessageDeliveryFailed/HardFail",
     one(hooks.postal, "MessageDeliveryFailed", status="HardFail"), S.BOUNCED, HARD),
    ("Postal MessageDelayed/SoftFail", one(hooks.postal, "MessageDelayed", status="SoftFail"),
     S.DEFERRED, None),
    ("Postal MessageSent/Sent", one(hooks.postal, "MessageSent", status="Sent"),
     S.DELIVERED, None),
    ("Postal MessageBounced", one(hooks.postal, "MessageBounced"), S.BOUNCED, HARD),
    ("Resend email.bounced/Permanent", resend("email.bounced", bounce_type="Permanent"),
     S.BOUNCED, HARD),
    ("Resend email.bounced/Permanent Suppressed",
     resend("email.bounced", bounce_type="Permanent", sub_type="Suppressed"), S.BOUNCED, HARD),
    ("Resend email.bounced/Transient", resend("email.bounced", bounce_type="Transient"),
     S.DEFERRED, None),
    ("Resend email.bounced/Undetermined", resend("email.bounced", bounce_type="Undetermined"),
     S.BOUNCED, None),
    ("Resend email.complained", resend("email.complained"), S.COMPLAINED, COMPLAINT),
    ("Resend email.delivery_delayed", resend("email.delivery_delayed"), S.DEFERRED, None),
    ("SendGrid bounce/bounce", one(hooks.sendgrid, "bounce", type_="bounce"), S.BOUNCED, HARD),
    ("SendGrid bounce/blocked", one(hooks.sendgrid, "bounce", type_="blocked"),
     S.DEFERRED, None),
    ("SendGrid dropped/Bounced Address", one(hooks.sendgrid, "dropped",
                                             reason="Bounced Address"), S.BOUNCED, HARD),
    ("SendGrid dropped/Invalid", one(hooks.sendgrid, "dropped", reason="Invalid"),
     S.BOUNCED, HARD),
    ("SendGrid dropped/Spam Reporting Address",
     one(hooks.sendgrid, "dropped", reason="Spam Reporting Address"), S.BOUNCED, COMPLAINT),
    ("SendGrid dropped/Unsubscribed Address",
     one(hooks.sendgrid, "dropped", reason="Unsubscribed Address"), S.BOUNCED, UNSUB),
    ("SendGrid dropped/Expired", one(hooks.sendgrid, "dropped", reason="Expired"),
     S.BOUNCED, None),
    ("SendGrid deferred", one(hooks.sendgrid, "deferred"), S.DEFERRED, None),
    ("SendGrid spamreport", one(hooks.sendgrid, "spamreport"), S.COMPLAINED, COMPLAINT),
    ("SparkPost bounce/10", one(hooks.sparkpost, "bounce", bounce_class="10"), S.BOUNCED, HARD),
    ("SparkPost bounce/30", one(hooks.sparkpost, "bounce", bounce_class="30"), S.BOUNCED, HARD),
    ("SparkPost out_of_band/10", one(hooks.sparkpost, "out_of_band", bounce_class="10"),
     S.BOUNCED, HARD),
    ("SparkPost bounce/22", one(hooks.sparkpost, "bounce", bounce_class="22"),
     S.DEFERRED, None),
    ("SparkPost bounce/50", one(hooks.sparkpost, "bounce", bounce_class="50"),
     S.BOUNCED, None),
    ("SparkPost bounce/90", one(hooks.sparkpost, "bounce", bounce_class="90"), S.SENT, UNSUB),
    ("SparkPost policy_rejection suppressed",
     one(hooks.sparkpost, "policy_rejection", bounce_class="25",
         raw_reason="554 5.7.1 recipient address suppressed due to customer policy"),
     S.BOUNCED, HARD),
    ("SparkPost policy_rejection other",
     one(hooks.sparkpost, "policy_rejection", bounce_class="25",
         raw_reason="554 5.7.1 [internal] Sending limit exceeded"), S.BOUNCED, None),
    ("SparkPost delay", one(hooks.sparkpost, "delay", bounce_class="21"), S.DEFERRED, None),
    ("SparkPost spam_complaint", one(hooks.sparkpost, "spam_complaint"),
     S.COMPLAINED, COMPLAINT),
    ("Unisender Go hard_bounced/err_user_unknown",
     one(hooks.unisender_go, "hard_bounced", delivery_status="err_user_unknown"),
     S.BOUNCED, HARD),
    ("Unisender Go hard_bounced/err_blacklisted",
     one(hooks.unisender_go, "hard_bounced", delivery_status="err_blacklisted"),
     S.BOUNCED, HARD),
    ("Unisender Go hard_bounced/err_mailbox_full",
     one(hooks.unisender_go, "hard_bounced", delivery_status="err_mailbox_full"),
     S.BOUNCED, None),
    ("Unisender Go soft_bounced",
     one(hooks.unisender_go, "soft_bounced", delivery_status="err_will_retry"),
     S.DEFERRED, None),
    ("Unisender Go spam", one(hooks.unisender_go, "spam"), S.COMPLAINED, COMPLAINT),
]


@pytest.mark.parametrize(("kind", "build", "status", "suppression"), ESP_CASES,
                         ids=[case[0] for case in ESP_CASES])
def test_each_esp_raw_kind_sets_the_documented_status_and_suppression(
    client, webhooks, kind, build, status, suppression
):
    """Each ESP's raw event, posted through Anymail's view, has the table's effect."""
    email = sent_to(ADDRESS)
    webhook = build(email)
    response = hooks.post(client, webhook)
    assert response.status_code == 200, response.content
    event = EmailEvent.objects.get()
    assert event.email_id == email.pk
    assert event.esp_name == webhook.esp
    assert event.recipient.lower() == ADDRESS
    assert status_of(email) == status
    assert event.hard_bounce is (suppression == HARD)
    found = list(Suppression.objects.values_list("address", "reason", "category"))
    if suppression is None:
        assert found == []
    else:
        category = "orders" if suppression == UNSUB else ""
        assert found == [(ADDRESS, suppression, category)]

    # A retry of the same webhook changes nothing.
    assert hooks.post(client, webhook).status_code == 200
    assert EmailEvent.objects.count() == 1
    assert Suppression.objects.count() == len(found)


# --- Findings: recipients of one event, lost suppressions -----------------------------


def test_ses_bounce_of_two_recipients_stores_and_suppresses_both(client, webhooks):
    """Anymail gives every recipient of one SES bounce the same event id: each is stored,
    each address suppressed (before the fix the second was dropped as a duplicate)."""
    email = sent_to("ann@example.com", "Bob@Example.com")
    webhook = hooks.ses_event("Bounce", **ids(email),
                              recipients=["ann@example.com", "Bob@Example.com"])
    assert hooks.post(client, webhook).status_code == 200

    events = EmailEvent.objects.order_by("recipient")
    assert [e.recipient for e in events] == ["Bob@Example.com", "ann@example.com"]
    assert len({e.event_id for e in events}) == 1
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "ann@example.com", "bob@example.com"}
    assert status_of(email) == EmailStatus.BOUNCED

    # SES (SNS) retries the notification: nothing new.
    for _ in range(3):
        assert hooks.post(client, webhook).status_code == 200
    assert EmailEvent.objects.count() == 2
    assert Suppression.objects.count() == 2


def test_ses_bounce_of_a_second_recipient_keeps_it_out_of_later_emails(client, webhooks, esp):
    """The second bounced recipient is not mailed again."""
    email = sent_to("ann@example.com", "bob@example.com")
    hooks.post(client, hooks.ses_event("Bounce", **ids(email),
                                       recipients=["ann@example.com", "bob@example.com"]))
    again = transactional_mail.send("order_confirmation", "bob@example.com", ORDER_CONTEXT)
    assert delivery.deliver(again.pk).status == EmailStatus.SUPPRESSED
    assert esp.requests == []


def test_recipient_key_holds_no_address_and_links_no_events(client, webhooks):
    """The dedup key is an HMAC bound to the event: it holds no address, and one address's
    keys differ from event to event, so erasing the address leaves nothing to link."""
    email = sent_to("ann@example.com")
    hooks.post(client, hooks.ses_event("Delivery", **ids(email), recipients=[ADDRESS]))
    hooks.post(client, hooks.ses_event("Open", **ids(email), recipients=[ADDRESS]))
    keys = list(EmailEvent.objects.values_list("recipient_key", flat=True))
    assert len(set(keys)) == 2
    assert all(len(key) == 64 and "ann" not in key for key in keys)

    # Erasure (forget_address) blanks the address and the raw payload; the row then
    # holds nothing of it, and a replay of the event is still recognised.
    EmailEvent.objects.update(recipient="", raw=None, raw_pruned=True)
    for event in EmailEvent.objects.all():
        values = [str(getattr(event, f.attname)) for f in EmailEvent._meta.concrete_fields]
        assert not any("ann" in value.lower() for value in values), values
    webhook = hooks.ses_event("Delivery", **ids(email), recipients=[ADDRESS], sns_id="again")
    hooks.post(client, webhook)
    hooks.post(client, webhook)
    assert EmailEvent.objects.count() == 3


def test_a_failed_suppression_is_retried_not_lost(client, sent_email):
    """If writing the suppression fails, the event is not stored either: the webhook
    answers 500, and the ESP's retry suppresses the address (before the fix the retry was
    ignored as a duplicate and the hard bounce lost)."""
    payload = bounce_event(sent_email, type="HardBounce")
    client.raise_request_exception = False
    with mock.patch.object(Suppression.objects, "get_or_create",
                           side_effect=OperationalError("database is locked")):
        assert post_webhook(client, payload).status_code == 500
    assert not EmailEvent.objects.exists()

    assert post_webhook(client, payload).status_code == 200
    assert Suppression.objects.get().address == "ann@example.com"
    assert status_of(sent_email) == EmailStatus.BOUNCED


def test_postmark_manually_deactivated_suppresses(client, sent_email):
    """Anymail calls ManuallyDeactivated "rejected"/"blocked"; Postmark will not mail the
    address again, so neither do we (before the fix it was not suppressed)."""
    post_webhook(client, bounce_event(sent_email, type="ManuallyDeactivated"))
    assert Suppression.objects.get().reason == "hard_bounce"
    assert status_of(sent_email) == EmailStatus.BOUNCED


# --- An attacker's (or a careless ESP's) webhooks -------------------------------------


def test_replays_of_a_batch_store_each_event_once(client, webhooks):
    """A SendGrid batch posted three times: each event once, in any order."""
    email = sent_to(ADDRESS)
    batch = [hooks.sendgrid(kind, **ids(email), recipient=ADDRESS, type_=type_).body[0]
             for kind, type_ in [("processed", None), ("delivered", None),
                                 ("bounce", "bounce"), ("open", None)]]
    for order in (batch, list(reversed(batch)), batch):
        webhook = hooks.Webhook("SendGrid", "/anymail/sendgrid/tracking/", order)
        assert hooks.post(client, webhook).status_code == 200
    assert EmailEvent.objects.count() == 4
    assert status_of(email) == EmailStatus.BOUNCED
    assert Suppression.objects.count() == 1


def test_hard_bounce_for_an_unknown_email_still_suppresses(client, webhooks):
    """An event for mail the app did not send (another system on the same ESP account)
    is stored without an email; a hard bounce still suppresses its address."""
    webhook = hooks.brevo("hard_bounce", message_id="<nobody@esp>", recipient="x@example.com")
    assert hooks.post(client, webhook).status_code == 200
    assert EmailEvent.objects.get().email is None
    assert Suppression.objects.get().address == "x@example.com"


def test_metadata_naming_no_email_or_an_impossible_one_is_harmless(client, webhooks):
    """A metadata id that is not a row id (out of range, negative, text) finds no email,
    falls back to the message id, and never fails the webhook."""
    email = sent_to(ADDRESS)
    for bad in ("99999999999999999999999", "-1", "abc", "", None, "1e3"):
        webhook = hooks.sendgrid("delivered", message_id=email.esp_message_id,
                                 recipient=ADDRESS, metadata={"transactional_mail_id": bad})
        assert hooks.post(client, webhook).status_code == 200
    assert EmailEvent.objects.filter(email=email).count() == 6
    assert status_of(email) == EmailStatus.DELIVERED


def test_webhook_body_over_djangos_upload_limit_is_refused(client, webhooks, settings):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused (400) before any parsing."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    email = sent_to(ADDRESS)
    webhook = hooks.brevo("hard_bounce", **ids(email), recipient=ADDRESS)
    webhook.body["padding"] = "x" * (1024 * 1024)
    assert hooks.post(client, webhook).status_code == 400
    assert not EmailEvent.objects.exists()
    assert not Suppression.objects.exists()


def test_large_fields_are_bounded_when_stored(client, webhooks):
    """An event under the upload limit but with huge fields stores bounded text and a stub
    for the raw payload; its outcome is still applied."""
    email = sent_to(ADDRESS)
    webhook = hooks.sparkpost("bounce", **ids(email), recipient=ADDRESS, bounce_class="10",
                              raw_reason="550 " + "x" * 400_000)
    assert hooks.post(client, webhook).status_code == 200
    event = EmailEvent.objects.get()
    assert len(event.mta_response) == receiver.TEXT_MAX_CHARS
    assert event.raw == {"truncated": True, "bytes": mock.ANY}
    assert status_of(email) == EmailStatus.BOUNCED
    assert Suppression.objects.get().address == ADDRESS


def test_a_recipient_that_is_no_address_is_stored_not_suppressed(client, webhooks):
    """A recipient too long for an address (or without @) does not fail the webhook."""
    email = sent_to(ADDRESS)
    for recipient in ("x" * 300 + "@example.com", "undisclosed-recipients"):
        webhook = hooks.brevo("hard_bounce", **ids(email), recipient=recipient)
        assert hooks.post(client, webhook).status_code == 200
    assert EmailEvent.objects.count() == 2
    assert len(EmailEvent.objects.first().recipient) <= 320
    assert not Suppression.objects.exists()


def test_resend_bounce_of_a_several_recipient_email_suppresses_no_one(client, webhooks):
    """Resend's events name the first To address whoever bounced: for an email with
    several recipients the bounce is recorded, but no (possibly innocent) address is
    suppressed."""
    email = sent_to("ann@example.com", "bob@example.com")
    webhook = hooks.resend("email.bounced", **ids(email),
                           to=["ann@example.com", "bob@example.com"], bounce_type="Permanent")
    assert hooks.post(client, webhook).status_code == 200
    assert status_of(email) == EmailStatus.BOUNCED
    assert not Suppression.objects.exists()


def test_mandrill_denylist_sync_events(client, webhooks):
    """Mandrill's blacklist sync event suppresses an address it adds for a hard bounce or
    by hand, not one it holds for a while after a soft bounce."""
    for reason, address in [("hard-bounce", "a@example.com"), ("manual edit", "b@example.com"),
                            ("soft-bounce", "c@example.com")]:
        webhook = hooks.mandrill_sync("blacklist", "add", reason, recipient=address)
        assert hooks.post(client, webhook).status_code == 200
    hooks.post(client, hooks.mandrill_sync("blacklist", "remove", "hard-bounce",
                                           recipient="d@example.com"))
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "a@example.com", "b@example.com"}
    assert EmailEvent.objects.count() == 4


def test_wrong_signature_changes_nothing_for_signed_esps(client, webhooks, settings):
    """A webhook signed with another key is refused by Anymail: nothing is stored."""
    email = sent_to(ADDRESS)
    good = hooks.webhook_settings(settings.ANYMAIL)
    settings.ANYMAIL = {**good, "MAILGUN_WEBHOOK_SIGNING_KEY": "other",
                        "MAILERSEND_SIGNING_SECRET": "other", "MANDRILL_WEBHOOK_KEY": "other",
                        "MAILTRAP_TRACKING_SECRET": "other", "UNISENDER_GO_API_KEY": "other"}
    builds = [one(hooks.mailgun, "failed", severity="permanent", reason="bounce"),
              one(hooks.mailersend, "hard_bounced"), one(hooks.mandrill, "hard_bounce"),
              one(hooks.unisender_go, "hard_bounced", delivery_status="err_user_unknown")]
    if int(anymail.__version__.split(".")[0]) >= 15:  # Mailtrap signatures: Anymail 15+
        builds.append(one(hooks.mailtrap, "bounce"))
    for build in builds:
        assert 400 <= hooks.post(client, build(email)).status_code < 500
    assert not EmailEvent.objects.exists()
    assert not Suppression.objects.exists()


# --- The migration that added the recipient key -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_keys_recent_events_so_their_replays_stay_duplicates():
    """0003 gives events of the last 30 days their recipient key (a retry across the
    upgrade is still recognised); older and recipient-less events keep a blank one."""
    import datetime

    from django.db import IntegrityError, connection
    from django.db.migrations.executor import MigrationExecutor

    app = "transactional_mail"
    before, after = (app, "0002_email_claim_token"), (app, "0003_emailevent_recipient_key")
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes(app)
    try:
        executor.migrate([before])
        old_apps = executor.loader.project_state([before]).apps
        OldEvent = old_apps.get_model(app, "EmailEvent")
        OldEvent.objects.create(esp_name="Amazon SES", event_id="sns-1", event_type="bounced",
                                recipient="Ann <Ann@Example.com>")
        stale = OldEvent.objects.create(esp_name="Amazon SES", event_id="sns-0",
                                        event_type="bounced", recipient="old@example.com")
        OldEvent.objects.filter(pk=stale.pk).update(
            received_at=timezone.now() - datetime.timedelta(days=45))
        OldEvent.objects.create(esp_name="Postmark", event_id="sha256:x",
                                event_type="delivered", recipient="")

        executor = MigrationExecutor(connection)
        executor.migrate([after])
        new_apps = executor.loader.project_state([after]).apps
        NewEvent = new_apps.get_model(app, "EmailEvent")
        keys = dict(NewEvent.objects.values_list("event_id", "recipient_key"))
        assert keys == {
            "sns-1": recipient_keys.recipient_key("Amazon SES", "sns-1", "ann@example.com"),
            "sns-0": "",
            "sha256:x": "",
        }
        # The same recipient of the same event cannot be stored twice; another can.
        with pytest.raises(IntegrityError), transaction.atomic():
            NewEvent.objects.create(esp_name="Amazon SES", event_id="sns-1",
                                    event_type="bounced", recipient="ann@example.com",
                                    recipient_key=keys["sns-1"])
        NewEvent.objects.create(
            esp_name="Amazon SES", event_id="sns-1", event_type="bounced",
            recipient="bob@example.com",
            recipient_key=recipient_keys.recipient_key("Amazon SES", "sns-1", "bob@example.com"))
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)
