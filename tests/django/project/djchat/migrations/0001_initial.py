from typing import ClassVar

from django.db import migrations
from django.db import models


class Migration(migrations.Migration):
    initial = True
    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("room", models.CharField(max_length=100)),
                ("author", models.CharField(max_length=150)),
                ("text", models.TextField()),
            ],
        ),
    ]
