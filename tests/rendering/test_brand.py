"""Logo images (rendering/brand.py): the type is read from the content, never the name."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import PNG
from transactional_mail.rendering.brand import LOGO_MAX_BYTES, logo_data_uri, logo_image_type


@pytest.mark.parametrize(("head", "kind"), [
    (PNG[:16], "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    (b"GIF87a\x01\x00\x01\x00", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),  # a RIFF file that is not an image
    (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
    (b"<html><body>", None),
    (b"", None),
])
def test_the_image_type_comes_from_the_first_bytes(head, kind):
    assert logo_image_type(head) == kind


def test_a_data_uri_holds_the_image():
    assert logo_data_uri(PNG).startswith("data:image/png;base64,iVBORw0KGgo")


def test_a_data_uri_is_refused_over_the_size_limit_or_for_another_type():
    with pytest.raises(ValidationError, match="over 1 MB"):
        logo_data_uri(PNG + b"\0" * LOGO_MAX_BYTES)
    with pytest.raises(ValidationError, match="not a PNG, JPEG, GIF or WebP"):
        logo_data_uri(b"<svg onload='alert(1)'/>")
