"""Pre-aggregated statistics: one row of counters per day and per kind of email.

The dashboard reads these rows, never the send log, so it answers at once over millions
of emails. They are kept up to date as emails are sent and events arrive
(:mod:`transactional_mail.stats`) and can be rebuilt from the log
(``manage.py rebuild_mail_stats``).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

#: The counters of a row, in the order the dashboard shows them.
COUNTERS = ("sent", "delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")

#: Upper bounds, in seconds, of the time-to-delivery histogram's buckets; the last
#: bucket (``ttd_more``) holds everything slower than a day.
DELIVERY_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400)


def bucket_field(bound: int | None) -> str:
    """The field of the bucket bounded by ``bound`` seconds (None: the last bucket)."""
    return "ttd_more" if bound is None else f"ttd_{bound}s"


#: The histogram's fields, fastest first.
BUCKET_FIELDS = tuple(bucket_field(bound) for bound in (*DELIVERY_BUCKETS, None))


class StatFlag(models.IntegerChoices):
    """What an email has already been counted for (``Email.stat_flags``, a bit set): each
    counter counts an email once, however many events say the same thing."""

    SENT = 1, _("sent")
    DELIVERED = 2, _("delivered")
    BOUNCED = 4, _("bounced")
    COMPLAINED = 8, _("complained")
    OPENED = 16, _("opened")
    CLICKED = 32, _("clicked")
    UNSUBSCRIBED = 64, _("unsubscribed")


class MailStatDay(models.Model):
    """The counters of one day for one template, trigger, category and subject variant.

    A day's counts for one key may be split over a few rows (``shard``): every sent email
    adds to its row inside its own transaction, and concurrent workers adding to one row
    would each wait for the other's commit. Readers sum the rows.

    Each email counts on the day it was queued (its ``created_at`` in the site's time
    zone), so the rates of a day compare the events of that day's emails with their
    number, whenever the events arrive. Staff test sends are not counted.
    """

    day = models.DateField(_("day"))
    template_key = models.CharField(_("template key"), max_length=100)
    trigger_key = models.CharField(_("trigger"), max_length=100, blank=True)
    category = models.CharField(_("category"), max_length=50, blank=True)
    subject_variant = models.PositiveSmallIntegerField(
        _("subject variant"),
        default=0,
        help_text=_("0: the template had no subject variants; 1 to 4: the variant sent."),
    )
    sent = models.PositiveIntegerField(_("sent"), default=0)
    delivered = models.PositiveIntegerField(_("delivered"), default=0)
    bounced = models.PositiveIntegerField(_("bounced"), default=0)
    complained = models.PositiveIntegerField(_("complained"), default=0)
    opened = models.PositiveIntegerField(_("opened"), default=0)
    clicked = models.PositiveIntegerField(_("clicked"), default=0)
    unsubscribed = models.PositiveIntegerField(_("unsubscribed"), default=0)
    shard = models.PositiveSmallIntegerField(
        _("shard"), default=0, editable=False,
        help_text=_("Which worker process's row: each sums a share of the day's counts."),
    )
    # The time-to-delivery histogram (BUCKET_FIELDS) is added below the class.

    class Meta:
        verbose_name = _("mail statistics")
        verbose_name_plural = _("mail statistics")
        ordering = ["-day", "template_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "template_key", "trigger_key", "category", "subject_variant",
                        "shard"],
                name="transactional_mail_mailstatday_unique",
            )
        ]
        indexes = [
            # The dashboard's filters, each over a period.
            models.Index(fields=["template_key", "day"], name="tmail_stat_template_idx"),
            models.Index(fields=["category", "day"], name="tmail_stat_category_idx"),
            models.Index(fields=["trigger_key", "day"], name="tmail_stat_trigger_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.template_key}: {self.sent} sent"


# One counter per bucket: separate columns, so that a worker increments one with F().
for _bound, _field in zip((*DELIVERY_BUCKETS, None), BUCKET_FIELDS, strict=True):
    MailStatDay.add_to_class(_field, models.PositiveIntegerField(
        f"delivered within {_bound} s" if _bound else "delivered after a day or more",
        default=0, editable=False))
