"""The send log's pages beside its list: an email's detail, one recipient's emails and
events, an attachment's download, and the detail page's action buttons.

Each needs the log's view permission (bodies, context snapshots and attachments are
personal data); the actions need the app's own permissions too, and a POST.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from .. import resending
from ..models import Email, EmailEvent
from ..models.suppression import normalize_address
from ..redaction import redact_context, redact_data, redact_text
from .log_queries import clean_term, filter_recipient

#: How many emails and events the per-recipient page lists (newest first).
RECIPIENT_PAGE_SIZE = 200

#: A MIME type served as is; anything else is served as application/octet-stream.
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}"
_MIME_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}$")

#: The detail page's actions and the permission each needs.
_ACTIONS = {"resend": "resend", "retry": "resend", "cancel": "cancel"}


def _email_or_404(model_admin, request, object_id) -> Email:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    email = Email.objects.filter(pk=_int(unquote(str(object_id)))).first()
    if email is None:
        raise Http404(_("No email with this id."))
    return email


def _int(value: str) -> int:
    return int(value) if value.isdigit() and int(value) < 2**63 else 0


def detail(model_admin, request, object_id):
    """The email as sent, its recipients, headers, context, attachments, timeline and
    attempts; the actions the user may take."""
    email = _email_or_404(model_admin, request, object_id)
    can_resend = model_admin.has_resend_permission(request)
    can_cancel = model_admin.has_cancel_permission(request)
    # Secrets are never shown, also while the email is on its way and its context still
    # holds them: every text of the page goes through ``hide``. The stored copies are
    # already redacted (see transactional_mail.redaction); this is the second lock.
    secrets = email.secrets()

    def hide(text: str) -> str:
        return redact_text(text, secrets)

    events = list(email.events.order_by("timestamp", "received_at", "id"))
    attempts = list(email.attempt_log.order_by("id"))
    for row in (*events, *attempts):
        for name in ("description", "mta_response", "click_url", "error"):
            if hasattr(row, name):
                setattr(row, name, hide(getattr(row, name)))
    email.subject, email.last_error = hide(email.subject), hide(email.last_error)
    resend_refused = resending.secrets_reason(email.secret_keys) if email.secret_keys else ""
    can_resend = can_resend and not resend_refused
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": str(email),
        "email": email,
        "subtitle": None,
        "html_body": hide(email.html_body),
        "text_body": hide(email.text_body),
        "secret_keys": email.secret_keys,
        "resend_refused": resend_refused,
        "recipients": [
            (field, [(address, _recipient_url(address)) for address in getattr(email, field)])
            for field in ("to", "cc", "bcc", "reply_to")
        ],
        "headers_json": json.dumps(redact_data(email.headers, secrets), indent=2,
                                   ensure_ascii=False),
        "metadata_json": json.dumps(redact_data(email.metadata, secrets), indent=2,
                                    ensure_ascii=False),
        "context_json": json.dumps(redact_context(email.context, email.secret_keys), indent=2,
                                   ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder),
        "attachments": [
            (attachment.get("filename", ""), attachment.get("mimetype", ""),
             reverse("admin:transactional_mail_email_attachment", args=[email.pk, index]))
            for index, attachment in enumerate(email.attachments)
        ],
        "events": events,
        "attempt_rows": attempts,
        "source": _source(email),
        "revision": _revision(email),
        "can_resend": can_resend,
        "can_cancel": can_cancel,
        "actions": [
            (name, label, reverse("admin:transactional_mail_email_action", args=[email.pk, name]))
            for name, label, allowed in (
                ("resend", _("Resend"),
                 can_resend and email.status not in resending.IN_PROGRESS_STATUSES),
                ("retry", _("Retry (failed emails)"), can_resend and email.status == "failed"),
                ("cancel", _("Cancel"), can_cancel and email.status in ("queued", "scheduled")),
            )
            if allowed
        ],
    }
    return TemplateResponse(request, "admin/transactional_mail/email/detail.html", context)


def _recipient_url(address: str) -> str:
    from django.utils.http import urlencode

    return (reverse("admin:transactional_mail_email_recipient") + "?"
            + urlencode({"address": address}))


def _source(email: Email) -> tuple[str, str] | None:
    """(label, admin URL or "") of the object the email is about."""
    content_type = email.source_content_type
    if content_type is None:
        return None
    label = f"{content_type.app_label}.{content_type.model} {email.source_object_id}"
    try:
        url = reverse(f"admin:{content_type.app_label}_{content_type.model}_change",
                      args=[email.source_object_id])
    except NoReverseMatch:
        url = ""
    return label, url


def _revision(email: Email) -> tuple[str, str] | None:
    """(label, admin URL) of the template revision rendered: its page in the template's
    revision history."""
    revision = email.template_revision
    if revision is None:
        return None
    label = _("%(key)s, revision %(number)s") % {"key": email.template_key,
                                                 "number": revision.number}
    if revision.template_id is None:
        return label, ""
    return label, reverse("admin:transactional_mail_emailtemplate_revision",
                          args=[revision.template_id, revision.number])


def recipient(model_admin, request):
    """Every email to one address and every event for it, newest first: "did she get it?"."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    address = clean_term(request.GET.get("address", ""))
    emails, events = [], []
    if address:
        emails = list(
            filter_recipient(Email.objects.all(), address)
            .defer("html_compressed", "text_compressed", "context", "attachments")
            .order_by("-created_at", "-id")[:RECIPIENT_PAGE_SIZE]
        )
        forms = list(dict.fromkeys([address, address.lower(), normalize_address(address)]))
        events = list(EmailEvent.objects.filter(recipient__in=forms)
                      .order_by("-received_at", "-id")[:RECIPIENT_PAGE_SIZE])
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Emails to %(address)s") % {"address": address} if address else
        _("Emails to one address"),
        "subtitle": None,
        "address": address,
        "emails": emails,
        "events": events,
        "limit": RECIPIENT_PAGE_SIZE,
    }
    return TemplateResponse(request, "admin/transactional_mail/email/recipient.html", context)


def attachment(model_admin, request, object_id, index):
    """One attachment, as a download with its stored MIME type: never shown inline (an HTML
    attachment must not run in the admin's origin), never sniffed."""
    email = _email_or_404(model_admin, request, object_id)
    attachments = email.attachments if isinstance(email.attachments, list) else []
    if not 0 <= index < len(attachments) or not isinstance(attachments[index], dict):
        raise Http404(_("No such attachment."))
    stored = attachments[index]
    try:
        content = base64.b64decode(stored.get("content", ""), validate=True)
    except (binascii.Error, ValueError, TypeError) as err:
        raise Http404(_("The attachment's stored content is not base64.")) from err
    mimetype = str(stored.get("mimetype", ""))
    if not _MIME_TYPE.match(mimetype):
        mimetype = "application/octet-stream"
    response = HttpResponse(content, content_type=mimetype)
    response["Content-Disposition"] = _disposition(str(stored.get("filename") or "attachment"))
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def _disposition(filename: str) -> str:
    from django.utils.http import content_disposition_header

    # The name only, on one line: no directory, no header injection.
    name = re.sub(r"[\x00-\x1f\x7f]", "", filename).replace("\\", "/").rsplit("/", 1)[-1]
    return content_disposition_header(True, name.strip() or "attachment")


def action(model_admin, request, object_id, name):
    """The detail page's buttons: POST only (the admin's CSRF check applies), with the
    app's permission; back to the detail page with a message."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    email = _email_or_404(model_admin, request, object_id)
    permission = _ACTIONS.get(name)
    if permission is None:
        raise Http404(_("No such action."))
    if not getattr(model_admin, f"has_{permission}_permission")(request):
        raise PermissionDenied
    emails = Email.objects.filter(pk=email.pk)
    if name == "cancel":
        model_admin.cancel(request, emails)
    else:
        model_admin.resend(request, emails if name == "resend" else
                           emails.filter(status="failed"), force=name == "resend")
    return HttpResponseRedirect(reverse("admin:transactional_mail_email_change",
                                        args=[email.pk]))
