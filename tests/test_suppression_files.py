"""Suppression lists as files: our CSV round trip, Postmark's and Amazon SES's exports,
hostile rows and files, the commands, and the admin's import form and export action."""

from __future__ import annotations

import datetime
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from transactional_mail import suppression_files
from transactional_mail.models import Suppression, SuppressionHistory, SuppressionReason
from transactional_mail.models.suppression import hash_address

pytestmark = pytest.mark.django_db

URL = "/admin/transactional_mail/suppression/"

POSTMARK_DUMP = {"Suppressions": [
    {"EmailAddress": "Bounced@Example.com", "SuppressionReason": "HardBounce",
     "Origin": "Recipient", "CreatedAt": "2019-12-10T08:58:33-05:00"},
    {"EmailAddress": "spam@example.com", "SuppressionReason": "SpamComplaint",
     "Origin": "Recipient", "CreatedAt": "2019-12-10T08:58:33-05:00"},
    {"EmailAddress": "unsub@example.com", "SuppressionReason": "ManualSuppression",
     "Origin": "Recipient", "CreatedAt": "2019-12-17T08:58:33-05:00"},
    {"EmailAddress": "staff@example.com", "SuppressionReason": "ManualSuppression",
     "Origin": "Customer", "CreatedAt": "2019-12-17T08:58:33-05:00"},
]}

SES_PAGE = {"SuppressedDestinationSummaries": [
    {"EmailAddress": "b@example.com", "Reason": "BOUNCE", "LastUpdateTime": 1700000000},
    {"EmailAddress": "c@example.com", "Reason": "COMPLAINT",
     "LastUpdateTime": "2024-01-02T03:04:05.678000+00:00"},
], "NextToken": "abc"}


def run(text: str, fmt: str = "ours", **options) -> suppression_files.ImportReport:
    return suppression_files.import_suppressions(io.StringIO(text), fmt, **options)


def export() -> str:
    out = io.StringIO()
    suppression_files.write_csv(out)
    return out.getvalue()


@pytest.fixture
def listed():
    old = timezone.now() - datetime.timedelta(days=400)
    Suppression.objects.create(address="ann@example.com", reason=SuppressionReason.HARD_BOUNCE,
                               source="Postmark event ev-1", created_at=old)
    Suppression.objects.create(address="bob@example.com", category="reviews",
                               reason=SuppressionReason.UNSUBSCRIBE, source="=HYPERLINK(1)")
    Suppression.objects.create(address=hash_address("cid@example.com"),
                               reason=SuppressionReason.COMPLAINT)


def test_our_csv_round_trips(listed):
    first = export()
    assert first.splitlines()[0] == "address,category,reason,source,created_at"
    Suppression.objects.all().delete()
    report = run(first)
    assert (report.added, report.existing, report.invalid) == (3, 0, 0)
    assert export() == first  # same rows, same dates, same order
    assert Suppression.objects.blocking(["cid@example.com"]).exists()  # the hash came back


def test_importing_twice_adds_nothing_twice(listed):
    text = export()
    report = run(text)
    assert (report.added, report.existing) == (0, 3)
    assert Suppression.objects.count() == 3


def test_an_existing_suppression_is_kept_as_it_is():
    Suppression.objects.create(address="ann@example.com", reason=SuppressionReason.MANUAL,
                               source="staff")
    run("address,reason\nann@example.com,hard_bounce\n")
    assert Suppression.objects.get().reason == SuppressionReason.MANUAL


def test_a_formula_cell_is_defused_in_the_export_and_restored_on_import(listed):
    text = export()
    assert ",'=HYPERLINK(1)," in text
    Suppression.objects.all().delete()
    run(text)
    assert Suppression.objects.get(address="bob@example.com").source == "=HYPERLINK(1)"


def test_postmark_dump_maps_reasons_and_keeps_dates():
    report = run(json.dumps(POSTMARK_DUMP), "postmark", category="reviews")
    assert report.added == 4
    rows = {s.address: s for s in Suppression.objects.all()}
    assert rows["bounced@example.com"].reason == SuppressionReason.HARD_BOUNCE
    assert rows["spam@example.com"].reason == SuppressionReason.COMPLAINT
    assert rows["unsub@example.com"].reason == SuppressionReason.UNSUBSCRIBE
    assert rows["staff@example.com"].reason == SuppressionReason.MANUAL
    assert rows["unsub@example.com"].source == "Postmark: ManualSuppression (Recipient)"
    assert {s.category for s in rows.values()} == {"reviews"}
    assert rows["bounced@example.com"].created_at == datetime.datetime(
        2019, 12, 10, 13, 58, 33, tzinfo=datetime.timezone.utc)


def test_postmark_csv_with_the_same_columns():
    text = ("EmailAddress,SuppressionReason,Origin,CreatedAt\n"
            "x@example.com,HardBounce,Recipient,2020-01-01T00:00:00Z\n")
    assert run(text, "postmark").added == 1


def test_ses_pages_json_and_csv():
    report = run(json.dumps([SES_PAGE, {"SuppressedDestinationSummaries": [
        {"EmailAddress": "d@example.com", "Reason": "BOUNCE"}]}]), "ses")
    assert (report.added, report.invalid) == (3, 0)
    assert Suppression.objects.get(address="b@example.com").created_at == datetime.datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)
    assert Suppression.objects.get(address="c@example.com").reason == SuppressionReason.COMPLAINT
    assert run("EmailAddress,Reason,LastUpdateTime\ne@example.com,BOUNCE,\n", "ses").added == 1


def test_a_file_of_the_wrong_format_says_so():
    report = run(json.dumps(POSTMARK_DUMP), "ses")
    assert report.added == 0 and "no 'SuppressedDestinationSummaries' list" in report.errors[0]
    report = run("EmailAddress,Reason\nx@example.com,BOUNCE\n", "ours")
    assert "the header lacks address" in report.errors[0]


def test_hostile_rows_are_refused_with_their_line_and_the_rest_imported():
    text = "\n".join([
        "address,category,reason,source,created_at",
        "good@example.com,,manual,,",
        "not-an-address,,manual,,",
        '"evil@example.com\nBcc: x@example.com",,manual,,',
        f"{'a' * 300}@example.com,,manual,,",
        "ok@example.com,,nonsense,,",
        "ok@example.com,bad category!,manual,,",
        "ok@example.com,,manual,,3000-01-01T00:00:00Z",
        "ok@example.com,,manual,,yesterday",
        "ok@example.com,,manual,,99999999999999999999",
        "sha256:nothex,,manual,,",
        "",
    ])
    report = run(text)
    assert (report.added, report.invalid) == (1, 9)
    assert report.errors[0] == "line 3: 'not-an-address' is not an email address"
    assert "line 4: the address holds a control character" in report.errors[1]
    assert list(Suppression.objects.values_list("address", flat=True)) == ["good@example.com"]


def test_a_broken_csv_stops_with_the_line_and_keeps_what_came_before():
    text = "address,reason\nfine@example.com,manual\n" + '"' + "x" * 200_000 + "\n"
    report = run(text)
    assert report.added == 1 and "cannot be read past here" in report.errors[0]


def test_a_huge_import_is_written_in_batches(django_assert_max_num_queries):
    lines = ["address,reason"] + [f"user{n}@example.com,hard_bounce" for n in range(2500)]
    # Per batch of 1000: a SELECT of existing rows and the INSERTs (SQLite splits them by
    # its variable limit), never a query per row.
    with django_assert_max_num_queries(60):
        report = run("\n".join(lines))
    assert report.added == 2500 and SuppressionHistory.objects.count() == 2500


def test_dry_run_writes_nothing():
    report = run("address,reason\nann@example.com,manual\nann@example.com,manual\n",
                 dry_run=True)
    assert (report.added, report.existing, report.dry_run) == (1, 1, True)
    assert not Suppression.objects.exists()


def test_the_commands(tmp_path, listed):
    path = tmp_path / "list.csv"
    call_command("export_suppressions", "--output", str(path), stderr=io.StringIO())
    out = io.StringIO()
    call_command("export_suppressions", stdout=out)
    assert out.getvalue() == path.read_bytes().decode()
    Suppression.objects.all().delete()
    out = io.StringIO()
    call_command("import_suppressions", str(path), "--dry-run", stdout=out)
    assert "would add 3" in out.getvalue() and not Suppression.objects.exists()
    call_command("import_suppressions", str(path), stdout=io.StringIO())
    assert Suppression.objects.count() == 3
    dump = tmp_path / "postmark.json"
    dump.write_text(json.dumps(POSTMARK_DUMP), encoding="utf-8")
    call_command("import_suppressions", str(dump), "--format", "postmark",
                 "--category", "reviews", stdout=io.StringIO())
    assert Suppression.objects.filter(category="reviews").count() == 5
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_suppressions", str(tmp_path / "missing.csv"))


def test_a_file_that_is_not_utf8_is_reported(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"address,reason\nok@example.com,manual\n\xe9t\xe9@x.com,manual\n")
    err = io.StringIO()
    call_command("import_suppressions", str(path), stdout=io.StringIO(), stderr=err)
    assert "not UTF-8" in err.getvalue()


# --- the admin -------------------------------------------------------------------------------

def staff(django_user_model, *codenames):
    user = django_user_model.objects.create_user("-".join(codenames) or "none", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def upload(text: str, name="list.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_admin_import_needs_the_add_permission(client, django_user_model):
    client.force_login(staff(django_user_model, "view_suppression"))
    assert "import/" not in client.get(URL).content.decode()
    response = client.post(f"{URL}import/", {
        "file": upload("address,reason\na@example.com,manual\n"), "format": "ours"})
    assert response.status_code == 403 and not Suppression.objects.exists()


def test_admin_import_adds_and_reports(admin_client, admin_user):
    assert "import/" in admin_client.get(URL).content.decode()
    assert admin_client.get(f"{URL}import/").status_code == 200
    response = admin_client.post(f"{URL}import/", {
        "file": upload(json.dumps(POSTMARK_DUMP), "dump.json"), "format": "postmark",
        "category": ""}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["dump.json: added 4, already suppressed 0, refused 0."]
    assert SuppressionHistory.objects.filter(user=admin_user).count() == 4


def test_admin_import_refuses_a_huge_file(admin_client, monkeypatch):
    from transactional_mail.admin import privacy

    monkeypatch.setattr(privacy, "IMPORT_MAX_BYTES", 10)
    response = admin_client.post(f"{URL}import/", {
        "file": upload("address,reason\na@example.com,manual\n"), "format": "ours"})
    assert "import_suppressions" in response.content.decode() and not Suppression.objects.exists()


def test_admin_export_action_streams_our_csv(admin_client, listed, client, django_user_model):
    ids = list(Suppression.objects.values_list("pk", flat=True))
    response = admin_client.post(URL, {"action": "export_csv", "_selected_action": ids})
    assert response["Content-Type"].startswith("text/csv")
    assert b"".join(response.streaming_content).decode() == export()
    client.force_login(staff(django_user_model))  # staff without the view permission
    assert client.post(URL, {"action": "export_csv", "_selected_action": ids}).status_code == 403


def test_admin_import_of_a_binary_file_says_what_is_wrong(admin_client):
    response = admin_client.post(f"{URL}import/", {
        "file": SimpleUploadedFile("list.xlsx", b"PK\x03\x04\xff\xfe\x00\x00binary"),
        "format": "ours"}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert any("not UTF-8" in m or "header lacks" in m for m in messages), messages
    assert not Suppression.objects.exists()
