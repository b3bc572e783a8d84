"""The send log's attempts, filters and searches; suppression history (issue 14).

The indexes on the big tables (email, emailevent) are created with ``IF NOT EXISTS`` on
PostgreSQL, so an operator with millions of rows can create them beforehand with
``CREATE INDEX CONCURRENTLY`` (docs/deployment.md lists the statements) and this
migration then only records them. The recipient search's GIN index on the lower-cased
``email.to`` exists on PostgreSQL only; it is not in the models' state (other databases
search without it).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


RECIPIENT_INDEX = "tmail_email_to_gin_idx"


def _big_table_index(model_name, index):
    """AddIndex whose SQL, on PostgreSQL, skips an index an operator made concurrently."""

    def forwards(apps, schema_editor):
        model = apps.get_model("transactional_mail", model_name)
        sql = str(index.create_sql(model, schema_editor))
        if schema_editor.connection.vendor == "postgresql":
            sql = sql.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
        schema_editor.execute(sql, params=None)

    def backwards(apps, schema_editor):
        schema_editor.remove_index(apps.get_model("transactional_mail", model_name), index)

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AddIndex(model_name=model_name, index=index)],
        database_operations=[migrations.RunPython(forwards, backwards)],
    )


def _add_recipient_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {RECIPIENT_INDEX} ON transactional_mail_email "
            "USING gin ((lower(\"to\"::text)::jsonb) jsonb_path_ops)"
        )


def _drop_recipient_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {RECIPIENT_INDEX}")



class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('transactional_mail', '0003_emailevent_recipient_key'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='EmailAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField(help_text="The email's attempt counter; a resend starts it again.", verbose_name='number')),
                ('claim_token', models.UUIDField(blank=True, help_text='The claim the attempt ran under: one row per claim, at most.', null=True, verbose_name='claim token')),
                ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='started at')),
                ('finished_at', models.DateTimeField(verbose_name='finished at')),
                ('outcome', models.CharField(choices=[('sent', 'sent'), ('transient', 'transient error (retried)'), ('permanent', 'permanent error'), ('ambiguous', 'outcome unknown'), ('suppressed', 'suppressed'), ('cancelled', 'cancelled'), ('lost_claim', 'claim lost (result not recorded on the email)')], max_length=20, verbose_name='outcome')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('esp_message_id', models.CharField(blank=True, max_length=255, verbose_name='ESP message id')),
                ('esp_status_code', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='ESP response status')),
            ],
            options={
                'verbose_name': 'delivery attempt',
                'verbose_name_plural': 'delivery attempts',
                'ordering': ['email', 'id'],
            },
        ),
        migrations.CreateModel(
            name='SuppressionHistory',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('address', models.CharField(max_length=254, verbose_name='address')),
                ('category', models.CharField(blank=True, max_length=50, verbose_name='category')),
                ('change', models.CharField(choices=[('added', 'added'), ('removed', 'removed')], max_length=10, verbose_name='change')),
                ('suppression_reason', models.CharField(choices=[('hard_bounce', 'hard bounce'), ('complaint', 'spam complaint'), ('unsubscribe', 'unsubscribed'), ('manual', 'added by staff')], max_length=20, verbose_name='suppression reason')),
                ('note', models.TextField(verbose_name='reason for the change')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='at')),
            ],
            options={
                'verbose_name': 'suppression history entry',
                'verbose_name_plural': 'suppression history',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AlterModelOptions(
            name='email',
            options={'ordering': ['-created_at'], 'permissions': [('resend_email', 'Can resend emails and retry failed ones'), ('cancel_email', 'Can cancel scheduled or queued emails')], 'verbose_name': 'email', 'verbose_name_plural': 'emails'},
        ),
        migrations.AddField(
            model_name='email',
            name='is_test',
            field=models.BooleanField(default=False, help_text='Sent by staff as a test (send(..., is_test=True)), not to a customer.', verbose_name='test email'),
        ),
        _big_table_index('email', models.Index(fields=['status', 'created_at'], name='tmail_email_status_idx')),
        _big_table_index('email', models.Index(fields=['trigger_key', 'created_at'], name='tmail_email_trigger_date_idx')),
        _big_table_index('email', models.Index(fields=['category', 'created_at'], name='tmail_email_category_idx')),
        _big_table_index('email', models.Index(condition=models.Q(('is_test', True)), fields=['created_at'], name='tmail_email_test_idx')),
        _big_table_index('emailevent', models.Index(fields=['recipient', 'received_at'], name='tmail_event_recipient_idx')),
        migrations.AddField(
            model_name='emailattempt',
            name='email',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='attempt_log', to='transactional_mail.email', verbose_name='email'),
        ),
        migrations.AddField(
            model_name='suppressionhistory',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='by'),
        ),
        migrations.AddConstraint(
            model_name='emailattempt',
            constraint=models.UniqueConstraint(fields=('email', 'claim_token'), name='transactional_mail_attempt_claim_unique'),
        ),
        migrations.AddIndex(
            model_name='suppressionhistory',
            index=models.Index(fields=['address', 'created_at'], name='tmail_supp_hist_addr_idx'),
        ),
        migrations.RunPython(_add_recipient_index, _drop_recipient_index),
    ]
