"""The retention task's index: emails not yet redacted, oldest first (issue 16).

Apart from 0010 so that an operator with millions of rows can migrate to 0010 (adding
the nullable column is instant), create the index with ``CREATE INDEX CONCURRENTLY``
(docs/deployment.md gives the statement), then migrate: on PostgreSQL this migration
creates it with ``IF NOT EXISTS`` and so only records it.
"""

from django.db import migrations, models

INDEX = models.Index(condition=models.Q(("redacted_at__isnull", True)), fields=["created_at"],
                     name="tmail_email_unredacted_idx")


def forwards(apps, schema_editor):
    model = apps.get_model("transactional_mail", "Email")
    sql = str(INDEX.create_sql(model, schema_editor))
    if schema_editor.connection.vendor == "postgresql":
        sql = sql.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
    schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("transactional_mail", "Email"), INDEX)


class Migration(migrations.Migration):

    dependencies = [
        ("transactional_mail", "0010_email_redaction_and_forget_address"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="email", index=INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
