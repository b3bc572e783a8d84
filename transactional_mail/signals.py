"""Public signals of transactional_mail."""

from django.dispatch import Signal

#: Sent after the email backend accepted an email.
#: Arguments: ``sender`` (the Email class), ``email`` (the Email row).
email_sent = Signal()

#: Sent when an email is marked failed (a permanent error, or retries exhausted).
#: Arguments: ``sender`` (the Email class), ``email`` (the Email row), ``error`` (the exception).
email_failed = Signal()

#: Sent when an operator alert is raised (docs/alerts.md): when its condition is first
#: found, when it turns critical, and again every ``ALERTS["REPEAT_AFTER"]`` seconds while
#: it lasts; the same moments ``ADMINS`` are mailed. Arguments: ``sender`` (the Alert
#: class), ``alert`` (the Alert row: ``kind``, ``severity``, ``message``, ``value``,
#: ``threshold``, ``raised_at``).
alert_raised = Signal()

#: Sent when ``forget_address`` has erased an address from the log, inside its
#: transaction (a receiver that raises undoes the erasure): erase what your site keeps
#: about it here. Arguments: ``sender`` (the Email class), ``address`` (the normalised
#: address), ``erasure`` (a ``transactional_mail.privacy.Erasure`` with the counts).
address_forgotten = Signal()
