"""Staff screens for personal data: the send log's "forget these addresses" action, and the
suppression list's CSV import and export. Each is permission-checked; the erasure and
the files' formats live in ``privacy`` and ``suppression_files``."""

from __future__ import annotations

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..privacy import AddressBusy, InvalidAddress, clean_address, forget_address
from ..suppression_files import RowError, csv_lines, import_suppressions

#: The largest file the admin's import reads (bigger lists: ``import_suppressions``,
#: which a request timeout does not cut short).
IMPORT_MAX_BYTES = 20 * 1024 * 1024

#: Addresses the forget action offers at once.
FORGET_MAX_ADDRESSES = 100


# --- forgetting addresses ------------------------------------------------------------------

class ForgetForm(forms.Form):
    addresses = forms.MultipleChoiceField(
        label=_("Addresses to forget"), widget=forms.CheckboxSelectMultiple)
    hash_suppressions = forms.BooleanField(
        label=_("Keep their suppressions only as a keyed hash"), required=False,
        help_text=_("The hash still blocks mail to the address; the address itself is gone "
                    "from the suppression list and its history."))

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["addresses"].choices = [(address, address) for address in choices]


def addresses_of(queryset) -> list[str]:
    """The distinct addresses the selected emails name (To, Cc, Bcc), sorted."""
    found: set[str] = set()
    for to, cc, bcc in queryset.order_by().values_list("to", "cc", "bcc")[:1000]:
        for entry in [*to, *cc, *bcc]:
            try:
                found.add(clean_address(entry))
            except InvalidAddress:
                continue  # an already erased recipient
    return sorted(found)[:FORGET_MAX_ADDRESSES]


def forget_selected(model_admin: admin.ModelAdmin, request, queryset):
    """The action: a confirmation page listing the selected emails' addresses, then the
    erasure of the addresses staff ticked, each in its own transaction."""
    choices = addresses_of(queryset)
    form = ForgetForm(request.POST if "confirm" in request.POST else None, choices=choices)
    if form.is_valid():
        for address in form.cleaned_data["addresses"]:
            try:
                erasure = forget_address(
                    address, hash_suppressions=form.cleaned_data["hash_suppressions"])
            except AddressBusy as err:
                model_admin.message_user(request, str(err), messages.ERROR)
                continue
            # Who erased which emails, and when; the entries name no address (an email's
            # text now reads "[erased]" where its recipient was).
            for email in model_admin.model.objects.filter(pk__in=erasure.email_ids[:1000]):
                model_admin.log_change(request, email, "Erased the data of a forgotten address")
            model_admin.message_user(request, ngettext(
                "An address was forgotten: %(count)d email erased.",
                "An address was forgotten: %(count)d emails erased.", erasure.emails)
                % {"count": erasure.emails}, messages.SUCCESS)
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Forget addresses"),
        "subtitle": None,
        "form": form,
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": request.POST.get("action", ""),
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/transactional_mail/email/forget.html", context)


# --- suppression files ---------------------------------------------------------------------

class ImportForm(forms.Form):
    file = forms.FileField(label=_("File"))
    format = forms.ChoiceField(label=_("Format"), choices=[
        ("ours", _("This app's CSV (address, category, reason, source, created_at)")),
        ("postmark", _("Postmark's suppression dump (JSON or CSV)")),
        ("ses", _("Amazon SES's suppressed destinations (JSON or CSV)")),
    ])
    category = forms.CharField(label=_("Category"), required=False, max_length=50,
                               help_text=_("Postmark and SES files only: suppress just this "
                                           "category. Blank: every email."))
    dry_run = forms.BooleanField(label=_("Check only (write nothing)"), required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is over %(limit)d MB: import it with manage.py "
                  "import_suppressions.") % {"limit": IMPORT_MAX_BYTES // (1024 * 1024)})
        return upload


def import_view(model_admin: admin.ModelAdmin, request):
    """Upload a suppression list; report what was (or would be) added and refused."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data["file"]
        stream = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
        try:
            report = import_suppressions(
                stream, data["format"], category=data["category"], dry_run=data["dry_run"],
                user=request.user,
                note=f"Imported from {upload.name[:100]} ({data['format']}) in the admin.")
        except RowError as err:
            form.add_error("category", str(err))
        else:
            level = messages.SUCCESS if not report.invalid else messages.WARNING
            model_admin.message_user(request, f"{upload.name[:100]}: {report.summary()}.", level)
            for error in report.errors:
                model_admin.message_user(request, error, messages.WARNING)
            return HttpResponseRedirect(
                reverse("admin:transactional_mail_suppression_changelist"))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Import suppressions"),
        "subtitle": None,
        "form": form,
    }
    return TemplateResponse(request, "admin/transactional_mail/suppression/import.html",
                            context)


def export_response(queryset) -> StreamingHttpResponse:
    """The suppressions of ``queryset`` as our CSV, streamed (a list of millions is never
    held in memory)."""
    rows = queryset.order_by("created_at", "pk").iterator(chunk_size=2000)
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="suppressions-{stamp}.csv"'
    return response
