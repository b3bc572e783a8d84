"""Joins the two migrations made side by side: template and layout drafts, and the send log."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("transactional_mail", "0004_drafts_and_authors"),
        ("transactional_mail", "0004_send_log"),
    ]

    operations = []
