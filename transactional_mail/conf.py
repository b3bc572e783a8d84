"""The only reader of ``settings.TRANSACTIONAL_MAIL``.

Every key has a default here and an entry in ``docs/settings.md``. Values are read at
call time, so ``override_settings`` works everywhere.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Sender when neither send() nor the trigger names one; None -> settings.DEFAULT_FROM_EMAIL.
    "DEFAULT_FROM_EMAIL": None,
    # Emails bound to model events (see docs/triggers.md).
    "TRIGGERS": {},
    # Django email backend used by the workers; None -> settings.EMAIL_BACKEND.
    "EMAIL_BACKEND": None,
    # Celery queue for the app's tasks; None -> the site's default queue.
    "QUEUE": None,
    # Emails a delivery task claims and sends together (its own first, then the
    # longest-due), over one backend connection.
    "BATCH_SIZE": 50,
    # Publish delivery tasks from a thread of the process after the commit, not in the
    # request's on_commit callback (transactional_mail.background_publish).
    "PUBLISH_IN_BACKGROUND": True,
    # Delivery attempts before an email with transient errors is marked failed.
    "MAX_ATTEMPTS": 8,
    # First retry delay in seconds; doubles per attempt, with jitter, up to RETRY_BACKOFF_MAX.
    "RETRY_BACKOFF": 30,
    "RETRY_BACKOFF_MAX": 3600,
    # Longest wait handed to the broker as a countdown. Longer waits stay on the row
    # (Email.next_attempt_at) for the sweep: Redis redelivers long-countdown tasks after
    # its visibility timeout (one hour by default).
    "MAX_COUNTDOWN": 300,
    # Period of the transactional_mail.sweep_outbox beat task, in seconds.
    "SWEEP_INTERVAL": 60,
    # A queued email due for longer than this many seconds is re-enqueued by the sweep.
    "SWEEP_GRACE": 60,
    # An email left in "sending" longer than this many seconds is recovered by the sweep
    # if its worker is gone (on PostgreSQL: its advisory lock is free; elsewhere: assumed).
    "SENDING_TIMEOUT": 600,
    # Raw ESP webhook payloads (personal data) are pruned after this many days; None keeps them.
    "RAW_EVENT_RETENTION_DAYS": 30,
    # Seconds send() and triggers may rely on cached lookups (a template key's languages,
    # the triggers staff disabled) in Django's default cache. Saving a template or a
    # trigger clears its entry; 0 turns the cache off.
    "CACHE_TIMEOUT": 60,
    # Compiled, CSS-inlined templates kept per worker process.
    "INLINE_CACHE_SIZE": 256,
    # Budgets of one render (rendering/budget.py): a render that goes over one is stopped
    # with RenderLimitExceeded (the email fails without retry; a template or layout whose
    # sample renders over one is refused on save). Characters of output (subject, HTML and
    # text together) and of any value a filter makes; 1 MiB is ten times Gmail's clip.
    "RENDER_MAX_CHARS": 1_048_576,
    # {% for %} iterations per render, all loops together.
    "RENDER_MAX_ITERATIONS": 100_000,
    # Wall-clock seconds per render.
    "RENDER_MAX_SECONDS": 5,
    # CSS rules premailer may inline for one email (cssutils slows down with the square
    # of the rule count; premailer matches each rule against every element).
    "RENDER_MAX_CSS_RULES": 1000,
    # Most recipients (to + cc + bcc) send() accepts for one email; reply_to has the same
    # cap. 50 is the per-message limit of Postmark, Amazon SES, Mailjet and Resend.
    "MAX_RECIPIENTS": 50,
    # Most bytes of attachments (before base64) send() accepts for one email. Postmark
    # refuses a message over 10 MB once base64-encoded: 7 MB of files is 9.3 MB encoded,
    # leaving room for the bodies. Raise it to fit your ESP (docs/settings.md has a table).
    "MAX_ATTACHMENTS_SIZE": 7_000_000,
    # At most "count" non-essential emails per recipient and category per "period":
    # {"reviews": {"count": 2, "period": "1d"}}; the excess is suppressed ("frequency
    # cap"), or folded into the next digest of a digest trigger.
    "FREQUENCY_CAPS": {},
    # Non-essential mail due inside these hours of the recipient's day waits for their
    # end: {"start": "21:00", "end": "08:00", "categories": ["reviews"]} (no
    # "categories": every non-essential one); None: no quiet hours.
    "QUIET_HOURS": None,
    # The recipient's time zone: an attribute path on the email's source object (e.g.
    # "customer.timezone") or a dotted callable(address) -> zone name; None, or no
    # answer: TIME_ZONE.
    "RECIPIENT_TIMEZONE": None,
    # Most events a digest email's "items" holds; "count" is always the whole window's.
    "DIGEST_MAX_ITEMS": 100,
    # Days a closed digest window and its events (their contexts: personal data) are kept
    # before the daily transactional_mail.redact_old_emails task deletes them; RETENTION_DAYS
    # when that is shorter. The digest email stays in the send log. None keeps them.
    "DIGEST_RETENTION_DAYS": 30,
    # Periodic emails run by celery beat, per key: "schedule" (a celery crontab, a
    # timedelta or a duration like "15m"), "timezone", "recipients", "template",
    # "category", "language", "secret_keys", "description" (docs/scheduling.md).
    "SCHEDULES": {},
    # Recipients a schedule run reads, builds and inserts per transaction.
    "SCHEDULE_BATCH_SIZE": 1000,
    # Seconds a schedule run holds its period without progress before another process
    # (the next beat tick, manage.py run_schedule) may take it over and resume it.
    "SCHEDULE_LEASE": 300,
    # Make Django's own PasswordResetView (django.contrib.auth.urls) use
    # transactional_mail.auth.PasswordResetForm: the reset email goes through the outbox.
    "USE_PASSWORD_RESET_FORM": False,
    # Attribute path on the user naming the language of their password reset email (e.g.
    # "profile.language"); None, or an empty value on the user: the request's language.
    "PASSWORD_RESET_LANGUAGE": None,
    # transactional_mail.allauth.AccountAdapter: more allauth template prefixes to send
    # through the app, {"account/email/my_notice": "my_notice"}, on top of the built-in map.
    "ALLAUTH_TEMPLATES": {},
    # --- Categories as sending streams, unsubscribe (docs/deliverability.md) ---------
    # The kinds of mail, by template category: {"reviews": {"essential": False,
    # "from_email": ..., "reply_to": [...], "esp_extra": {...}, "connection": None,
    # "description": "..."}}. An undeclared category is essential (no unsubscribe).
    "CATEGORIES": {},
    # Absolute https URL of the site ("https://shop.example.com"), for the unsubscribe
    # and preferences links in non-essential mail.
    "BASE_URL": "",
    # A URL or mailto: address put in every email's List-Help header ("" for none).
    "LIST_HELP": "",
    # An address that processes unsubscribe requests by mail, added to List-Unsubscribe
    # as a mailto: beside the one-click URL ("" for none).
    "UNSUBSCRIBE_MAILTO": "",
    # Consecutive soft bounces (no delivery in between) after which an address is
    # suppressed for every category.
    "SOFT_BOUNCE_LIMIT": 5,
    # Operator alerts (docs/alerts.md), checked by the transactional_mail.check_alerts
    # beat task. Give only the keys to change; the others keep these defaults. A
    # threshold of None turns that alert off. Rates are fractions (0.001 is 0.1 %).
    "ALERTS": {
        # Seconds between two checks (the beat row's interval).
        "INTERVAL": 300,
        # Bounce and complaint rates are over the emails created in the last WINDOW
        # seconds that the ESP accepted, once there are at least MIN_EMAILS of them.
        "WINDOW": 86400,
        "MIN_EMAILS": 100,
        # (warning, critical). Gmail's sender rules: keep complaints under 0.1 %, never
        # reach 0.3 %. Bounces: most ESPs ask for under 2 %; Amazon SES reviews at 5 %.
        "COMPLAINT_RATE": (0.001, 0.003),
        "BOUNCE_RATE": (0.02, 0.05),
        # The last hour's emails against the same hour a week before: a warning below
        # VOLUME_DROP times, or above VOLUME_SPIKE times, last week's count, when the
        # larger of the two counts is at least VOLUME_MIN.
        "VOLUME_DROP": 0.5,
        "VOLUME_SPIKE": 3.0,
        "VOLUME_MIN": 100,
        # Critical when an email has been due in the outbox (queued, scheduled or
        # sending) for more than this many seconds: workers, beat or broker are down.
        "STUCK_AFTER": 900,
        # Seconds before an alert still active is mailed to ADMINS again (a warning
        # turning critical is mailed at once).
        "REPEAT_AFTER": 21600,
    },
    # Privacy (docs/privacy.md): the bodies, context snapshots and attachments of finished
    # emails older than this many days are removed by the transactional_mail.redact_old_emails
    # beat task; the rest of each row (status, template, category, times) stays. None keeps them.
    "RETENTION_DAYS": None,
}


def get_setting(name: str) -> Any:
    """Return ``TRANSACTIONAL_MAIL[name]`` from settings, or its default."""
    if name not in DEFAULTS:
        raise KeyError(f"{name!r} is not a TRANSACTIONAL_MAIL setting")
    user_settings = getattr(settings, "TRANSACTIONAL_MAIL", None) or {}
    if not isinstance(user_settings, dict):
        return DEFAULTS[name]
    return user_settings.get(name, DEFAULTS[name])


def default_from_email() -> str:
    """The sender used when neither the caller nor the trigger gives one."""
    return get_setting("DEFAULT_FROM_EMAIL") or settings.DEFAULT_FROM_EMAIL


def email_backend() -> str:
    """Dotted path of the Django email backend the workers send through."""
    return get_setting("EMAIL_BACKEND") or settings.EMAIL_BACKEND
