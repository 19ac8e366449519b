# Full-text search of claims (annotations.selectors._search) without reading every revision:
# a GIN index on the very expression the search filters on. PostgreSQL only; elsewhere the
# search is a substring match and this migration does nothing.

from django.db import migrations

INDEX = "claimrevision_search"
EXPRESSION = (
    "(setweight(to_tsvector('english'::regconfig, COALESCE(label, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, COALESCE(argument, '')), 'B'))"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON annotations_claimrevision "
            f"USING gin ({EXPRESSION})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0002_claim_uid"),
    ]

    operations = [migrations.RunPython(create, drop)]
