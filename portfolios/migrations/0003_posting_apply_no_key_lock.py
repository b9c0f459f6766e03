"""The posting trigger locks client accounts FOR NO KEY UPDATE (what its UPDATE takes anyway), not FOR UPDATE.

FOR UPDATE conflicts with the FOR KEY SHARE lock every posting INSERT's foreign-key check takes on its
account, so two writers inserting postings without locking first (batch settlement, order SQL functions)
could each hold a key-share lock the other's FOR UPDATE waits for. FOR NO KEY UPDATE does not conflict
with key-share locks, and still serializes the writers of one balance.
"""
from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION portfolios_posting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Lock first, in primary-key order, so concurrent writers of several accounts cannot deadlock.
    PERFORM 1 FROM portfolios_ledgeraccount
      WHERE id IN (SELECT account_id FROM inserted) AND owner_id IS NOT NULL
      ORDER BY id FOR %s;
    UPDATE portfolios_ledgeraccount AS a
       SET balance = a.balance + s.total
      FROM (SELECT account_id, sum(amount) AS total FROM inserted GROUP BY account_id) AS s
     WHERE a.id = s.account_id AND a.owner_id IS NOT NULL;
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0002_ledger_invariants")]

    operations = [migrations.RunSQL(FUNCTION % "NO KEY UPDATE", FUNCTION % "UPDATE")]
