"""How a failed send is classified (transactional_mail.failures).

What each class does to the email (a retry, a failure, the uncertain flag) is tested
end to end with the fake ESP in test_delivery.py and tests/integration/.
"""

from __future__ import annotations

import datetime
import smtplib
from unittest import mock

from django.utils import timezone

from transactional_mail import failures
from transactional_mail.failures import Failure, classify_error


class TestClassifyError:
    def test_smtp(self):
        assert classify_error(smtplib.SMTPRecipientsRefused({}))[0] is Failure.PERMANENT
        assert classify_error(smtplib.SMTPResponseException(451, b"later"))[0] is Failure.TRANSIENT
        assert classify_error(smtplib.SMTPResponseException(550, b"no"))[0] is Failure.PERMANENT
        assert classify_error(ConnectionRefusedError())[0] is Failure.TRANSIENT
        assert classify_error(TimeoutError())[0] is Failure.AMBIGUOUS

    def test_unknown_errors_are_transient(self):
        assert classify_error(RuntimeError("bug"))[0] is Failure.TRANSIENT

    def test_retry_after_http_date(self):
        response = mock.Mock(headers={"Retry-After": (
            timezone.now() + datetime.timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT"
        )})
        assert 100 <= failures._retry_after(response) <= 120
