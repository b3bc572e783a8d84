"""Joins the editor's permission, made beside the drafts and the send log: the template's
two permissions, together."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("transactional_mail", "0005_merge_drafts_and_send_log"),
        ("transactional_mail", "0004_editor_permissions"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="emailtemplate",
            options={
                "ordering": ["key", "language"],
                "permissions": [
                    ("publish_emailtemplate", "Can publish email template"),
                    ("send_test_emailtemplate", "Can send test email to any address"),
                ],
                "verbose_name": "email template",
                "verbose_name_plural": "email templates",
            },
        ),
    ]
