"""Tests of transactional_mail.rendering.library: the allow-listed filters, bounded."""

from __future__ import annotations

import datetime

import pytest

from tests.rendering.helpers import render
from transactional_mail.rendering.library import as_datetime

pytestmark = pytest.mark.usefixtures("pure")


def test_as_datetime_parses_iso_strings_from_the_snapshot():
    """JSON dates are ISO strings; as_datetime makes date/time filters work on them."""
    assert as_datetime("2024-05-01T09:30:00Z") == datetime.datetime(
        2024, 5, 1, 9, 30, tzinfo=datetime.timezone.utc
    )
    assert as_datetime("2024-05-01") == datetime.date(2024, 5, 1)
    assert as_datetime("09:30") == datetime.time(9, 30)
    assert as_datetime("2024-02-31") == "2024-02-31"
    assert as_datetime("soon") == "soon"
    assert as_datetime(42) == 42
    context = {"created": "2024-05-01T09:30:00Z", "day": "2024-12-24"}
    assert render('{{ created|as_datetime|date:"j F Y H:i" }}', context) == "1 May 2024 09:30"
    assert render('{{ day|as_datetime|date:"D j M" }}|{{ day|date:"Y" }}', context) == (
        "Tue 24 Dec|"
    )


def test_padding_filters_refuse_huge_widths():
    """A template cannot make the worker allocate gigabytes."""
    assert render('{{ s|center:"999999999" }}', {"s": "x"}) == "x"
    assert render('{{ s|ljust:"5" }}|', {"s": "x"}) == "x    |"
    assert render('{{ n|floatformat:"99999" }}', {"n": 1.5}) == "1.5"
    assert render('{{ n|stringformat:"099999999d" }}', {"n": 1}) == "1"
    assert render('{{ n|floatformat:"2" }}', {"n": 1.5}) == "1.50"
