# A stored full-text document per revision, kept by a trigger and GIN-indexed, instead of
# the expression index of 0003: a search for a common word ranks thousands of matches, and
# ranking on the expression parsed every matching text again. PostgreSQL only; elsewhere
# the column stays NULL and search is a substring match.

import django.contrib.postgres.search
from django.db import migrations

DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, COALESCE({row}label, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, COALESCE({row}argument, '')), 'B')"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE OR REPLACE FUNCTION annotations_revision_search_document() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN NEW.search_document := "
        + DOCUMENT.format(row="NEW.")
        + "; RETURN NEW; END $$"
    )
    schema_editor.execute(
        "CREATE TRIGGER annotations_revision_search_document BEFORE INSERT OR UPDATE OF "
        "label, argument, search_document ON annotations_claimrevision FOR EACH ROW "
        "EXECUTE FUNCTION annotations_revision_search_document()"
    )
    schema_editor.execute(
        "UPDATE annotations_claimrevision SET search_document = " + DOCUMENT.format(row="")
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS claimrevision_search_document ON "
        "annotations_claimrevision USING gin (search_document)"
    )
    schema_editor.execute("DROP INDEX IF EXISTS claimrevision_search")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS annotations_revision_search_document ON annotations_claimrevision"
    )
    schema_editor.execute("DROP FUNCTION IF EXISTS annotations_revision_search_document()")
    schema_editor.execute("DROP INDEX IF EXISTS claimrevision_search_document")
    schema_editor.execute(  # 0003's index again
        "CREATE INDEX IF NOT EXISTS claimrevision_search ON annotations_claimrevision "
        "USING gin ((" + DOCUMENT.format(row="") + "))"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0005_neuron_lists"),
    ]

    operations = [
        migrations.AddField(
            model_name="claimrevision",
            name="search_document",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(create, drop),
    ]
