"""The ``comment_digest`` template: the shop's own, installed by the demo's seed.

Not the app's ``activity_digest`` starter: that one is written for a scheduled ``send()``
with one reader's context (``user``, ``period``, ``digest_url``...), while a digest
trigger's email sees only ``{"items": [...], "count": n}``, the same for every reader
(docs/scheduling.md, "Digests"). Each item is what ``shop.mail.comment_context`` built for
one comment: ``title``, ``summary``, ``product``, ``url``, ``at``. The first comment of a
window goes out at once (``count`` 1), the others together when the window closes.

It is created once, in the shop's layout, and published; staff edit it in the admin like
any template, and the seed leaves it alone after that.
"""

from __future__ import annotations

from transactional_mail.default_layout import NAME
from transactional_mail.models import EmailTemplate, Layout

KEY = "comment_digest"
CATEGORY = "activity"

SUBJECT = (
    "{% if count == 1 %}New comment on {{ items.0.product }}"
    "{% else %}{{ count }} new comments on products you commented on{% endif %}"
)
PREHEADER = "What other customers said since your comment, in one email."
HTML = """<h1>{% if count == 1 %}A new comment{% else %}{{ count }} new comments{% endif %}</h1>
<p>Hello,</p>
<p>Customers are talking about a product you commented on at Demo Shop.</p>
<ul>
{% for item in items %}<li><a href="{{ item.url }}">{{ item.title }}</a>
({{ item.at|as_datetime|date:"j F, H:i" }})<br>{{ item.summary }}</li>
{% endfor %}</ul>
{% if count > items|length %}<p>And more: the shop shows every comment.</p>
{% endif %}<p class="actions"><a class="button" href="{{ items.0.url }}">Join the conversation</a>
</p>
<p class="muted">You get this email because you commented on a product. Comments that
arrive close together come in one email.</p>
"""
TEXT = """Hello,

Customers are talking about a product you commented on at Demo Shop.
{% for item in items %}
{{ item.title }} ({{ item.at|as_datetime|date:"j F, H:i" }})
{{ item.summary }}
{{ item.url }}
{% endfor %}{% if count > items|length %}
And more: the shop shows every comment.
{% endif %}
You get this email because you commented on a product. Comments that arrive close
together come in one email.
"""
SAMPLE_CONTEXT = {
    "count": 2,
    "items": [
        {"title": "Camille Dubois commented on Logo mug",
         "summary": "It keeps coffee warm for ages, and the logo survived the dishwasher.",
         "product": "Logo mug", "url": "http://127.0.0.1:8000/?product=mug#comments",
         "at": "2026-11-30T09:15:00+00:00"},
        {"title": "Ada Lovelace commented on Logo mug",
         "summary": "Mine too. I bought a second one for the office.",
         "product": "Logo mug", "url": "http://127.0.0.1:8000/?product=mug#comments",
         "at": "2026-11-30T09:42:00+00:00"},
    ],
}


def install_comment_digest() -> list[str]:
    """Create and publish the template when it is missing; describe what was created."""
    if EmailTemplate.objects.filter(key=KEY).exists():
        return []  # staff's from now on
    template = EmailTemplate(
        key=KEY, language="", layout=Layout.objects.filter(name=NAME).first(),
        category=CATEGORY, subject=SUBJECT, preheader=PREHEADER, html=HTML, text=TEXT,
        sample_context=SAMPLE_CONTEXT,
    )
    template.revision_note = "The shop's comment digest (seeded by the demo)."
    template.save()
    template.publish()
    return [f"the {KEY} template"]
