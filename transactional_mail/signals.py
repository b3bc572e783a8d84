"""Public signals of transactional_mail."""

from django.dispatch import Signal

#: Sent after the email backend accepted an email.
#: Arguments: ``sender`` (the Email class), ``email`` (the Email row).
email_sent = Signal()

#: Sent when an email is marked failed (a permanent error, or retries exhausted).
#: Arguments: ``sender`` (the Email class), ``email`` (the Email row), ``error`` (the exception).
email_failed = Signal()
