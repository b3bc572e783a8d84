
import django.core.validators
import django.db.models.deletion
import transactional_mail.rendering.brand
from django.conf import settings
from django.db import migrations, models


def publish_current_revisions(apps, schema_editor):
    """Existing sites keep sending what they send today: their latest revisions are the
    published ones (before drafts, every save went out at once)."""
    db = schema_editor.connection.alias
    for name in ("EmailTemplate", "Layout"):
        model = apps.get_model("transactional_mail", name)
        model.objects.using(db).filter(
            published_revision__isnull=True, current_revision__isnull=False
        ).update(published_revision=models.F("current_revision"))


class Migration(migrations.Migration):

    dependencies = [
        ('transactional_mail', '0003_emailevent_recipient_key'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='emailtemplate',
            options={'ordering': ['key', 'language'], 'permissions': [('publish_emailtemplate', 'Can publish email template')], 'verbose_name': 'email template', 'verbose_name_plural': 'email templates'},
        ),
        migrations.AlterModelOptions(
            name='layout',
            options={'ordering': ['name'], 'permissions': [('publish_layout', 'Can publish layout')], 'verbose_name': 'layout', 'verbose_name_plural': 'layouts'},
        ),
        migrations.AddField(
            model_name='emailtemplate',
            name='published_revision',
            field=models.ForeignKey(blank=True, editable=False, help_text='The revision emails are rendered from.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='transactional_mail.templaterevision', verbose_name='published revision'),
        ),
        migrations.AddField(
            model_name='layout',
            name='font_family',
            field=models.CharField(default="-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", help_text='A CSS font-family list, e.g. Helvetica, Arial, sans-serif.', max_length=200, validators=[transactional_mail.rendering.brand.validate_font_stack], verbose_name='font stack'),
        ),
        migrations.AddField(
            model_name='layout',
            name='footer_address',
            field=models.TextField(blank=True, help_text='The postal address shown in the footer.', verbose_name='footer address'),
        ),
        migrations.AddField(
            model_name='layout',
            name='help_url',
            field=models.URLField(blank=True, max_length=500, verbose_name='help link'),
        ),
        migrations.AddField(
            model_name='layout',
            name='legal_text',
            field=models.TextField(blank=True, help_text='Shown in the footer, e.g. why they get this.', verbose_name='legal text'),
        ),
        migrations.AddField(
            model_name='layout',
            name='logo_file',
            field=models.FileField(blank=True, help_text="A PNG, JPEG, GIF or WebP image of at most 1 MB, stored in the site's default storage; saving puts its URL in the logo URL.", max_length=300, upload_to='transactional_mail/logos/', validators=[django.core.validators.FileExtensionValidator(['png', 'jpg', 'jpeg', 'gif', 'webp'])], verbose_name='logo upload'),
        ),
        migrations.AddField(
            model_name='layout',
            name='published_revision',
            field=models.ForeignKey(blank=True, editable=False, help_text='The revision emails are rendered in.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='transactional_mail.layoutrevision', verbose_name='published revision'),
        ),
        migrations.AddField(
            model_name='layoutrevision',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='created by'),
        ),
        migrations.AddField(
            model_name='layoutrevision',
            name='font_family',
            field=models.CharField(default="-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", help_text='A CSS font-family list, e.g. Helvetica, Arial, sans-serif.', max_length=200, validators=[transactional_mail.rendering.brand.validate_font_stack], verbose_name='font stack'),
        ),
        migrations.AddField(
            model_name='layoutrevision',
            name='footer_address',
            field=models.TextField(blank=True, help_text='The postal address shown in the footer.', verbose_name='footer address'),
        ),
        migrations.AddField(
            model_name='layoutrevision',
            name='help_url',
            field=models.URLField(blank=True, max_length=500, verbose_name='help link'),
        ),
        migrations.AddField(
            model_name='layoutrevision',
            name='legal_text',
            field=models.TextField(blank=True, help_text='Shown in the footer, e.g. why they get this.', verbose_name='legal text'),
        ),
        migrations.AddField(
            model_name='layoutrevision',
            name='note',
            field=models.CharField(blank=True, default='', max_length=500, verbose_name='note'),
        ),
        migrations.AddField(
            model_name='templaterevision',
            name='note',
            field=models.CharField(blank=True, default='', max_length=500, verbose_name='note'),
        ),
        migrations.AlterField(
            model_name='emailtemplate',
            name='current_revision',
            field=models.ForeignKey(blank=True, editable=False, help_text='The latest revision: the draft, when it is not the published one.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='transactional_mail.templaterevision', verbose_name='current revision'),
        ),
        migrations.AlterField(
            model_name='layout',
            name='background_color',
            field=models.CharField(default='#f4f4f5', max_length=32, validators=[transactional_mail.rendering.brand.validate_css_color], verbose_name='background colour'),
        ),
        migrations.AlterField(
            model_name='layout',
            name='current_revision',
            field=models.ForeignKey(blank=True, editable=False, help_text='The latest revision: the draft, when it is not the published one.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='transactional_mail.layoutrevision', verbose_name='current revision'),
        ),
        migrations.AlterField(
            model_name='layout',
            name='primary_color',
            field=models.CharField(default='#1a73e8', help_text='A CSS colour: #rgb, #rrggbb, #rrggbbaa, rgb(), rgba() or a colour name.', max_length=32, validators=[transactional_mail.rendering.brand.validate_css_color], verbose_name='primary colour'),
        ),
        migrations.AlterField(
            model_name='layout',
            name='text_color',
            field=models.CharField(default='#1f2937', max_length=32, validators=[transactional_mail.rendering.brand.validate_css_color], verbose_name='text colour'),
        ),
        migrations.AlterField(
            model_name='layoutrevision',
            name='background_color',
            field=models.CharField(default='#f4f4f5', max_length=32, validators=[transactional_mail.rendering.brand.validate_css_color], verbose_name='background colour'),
        ),
        migrations.AlterField(
            model_name='layoutrevision',
            name='primary_color',
            field=models.CharField(default='#1a73e8', help_text='A CSS colour: #rgb, #rrggbb, #rrggbbaa, rgb(), rgba() or a colour name.', max_length=32, validators=[transactional_mail.rendering.brand.validate_css_color], verbose_name='primary colour'),
        ),
        migrations.AlterField(
            model_name='layoutrevision',
            name='text_color',
            field=models.CharField(default='#1f2937', max_length=32, validators=[transactional_mail.rendering.brand.validate_css_color], verbose_name='text colour'),
        ),
        migrations.RunPython(publish_current_revisions, migrations.RunPython.noop),
    ]
