"""Drop indexes that others already cover, so every posting and entry written maintains fewer of them.

- ledgeraccount.owner: led by the unique (owner, kind, asset); posting.account: led by (account, id).
- journalentry.reference: kept as a plain btree for equality look-ups (renamed, not rebuilt); its
  `varchar_pattern_ops` copy served only LIKE 'prefix%', which nothing runs.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

REFERENCE_INDEX = "portfolios_journalentry_reference_04fd5aee"  # Django's name for the db_index=True index


class Migration(migrations.Migration):
    dependencies = [
        ("portfolios", "0005_entry_check_per_transaction"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="journalentry", name="reference",
                                      field=models.CharField(max_length=128)),
                migrations.AddIndex(model_name="journalentry",
                                    index=models.Index(fields=["reference"], name="journal_reference_idx")),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {REFERENCE_INDEX}_like; "
                    f"ALTER INDEX {REFERENCE_INDEX} RENAME TO journal_reference_idx;",
                    f"ALTER INDEX journal_reference_idx RENAME TO {REFERENCE_INDEX}; "
                    f"CREATE INDEX {REFERENCE_INDEX}_like ON portfolios_journalentry (reference varchar_pattern_ops);",
                ),
            ],
        ),
        migrations.AlterField(
            model_name="ledgeraccount", name="owner",
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="ledger_accounts", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="posting", name="account",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="postings", to="portfolios.ledgeraccount"),
        ),
    ]
