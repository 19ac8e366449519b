# A portable identity for claims (export/import). Existing rows each get their own UUID.

import uuid

from django.db import migrations, models


def fill_uids(apps, schema_editor):
    Claim = apps.get_model("annotations", "Claim")
    for claim in Claim.objects.filter(uid__isnull=True).only("pk"):
        Claim.objects.filter(pk=claim.pk).update(uid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="claim",
            name="uid",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(fill_uids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="claim",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
