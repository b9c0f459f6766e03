-- Adds new postings to their client accounts' balances, locking them in primary-key order (ADR 004).
CREATE OR REPLACE FUNCTION portfolios_posting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted AS i JOIN portfolios_journalentry AS e ON e.id = i.entry_id
                WHERE e.txid <> txid_current()) THEN
        RAISE EXCEPTION 'postings can only be added to a journal entry by the transaction that created it'
            USING ERRCODE = 'restrict_violation';
    END IF;
    -- Lock first, in primary-key order, so concurrent writers of several accounts cannot deadlock.
    PERFORM 1 FROM portfolios_ledgeraccount
      WHERE id IN (SELECT account_id FROM inserted) AND owner_id IS NOT NULL
      ORDER BY id FOR NO KEY UPDATE;
    UPDATE portfolios_ledgeraccount AS a
       SET balance = a.balance + s.total
      FROM (SELECT account_id, sum(amount) AS total FROM inserted GROUP BY account_id) AS s
     WHERE a.id = s.account_id AND a.owner_id IS NOT NULL;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS portfolios_posting_apply ON portfolios_posting;
CREATE TRIGGER portfolios_posting_apply
    AFTER INSERT ON portfolios_posting
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION portfolios_posting_apply();
