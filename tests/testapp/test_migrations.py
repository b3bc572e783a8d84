from io import StringIO

from django.core.management import call_command


def test_testapp_migrations_match_its_models(db):
    """The test app's models and migrations agree (makemigrations has nothing to write)."""
    out = StringIO()
    call_command("makemigrations", "testapp", "--check", "--dry-run", stdout=out)
