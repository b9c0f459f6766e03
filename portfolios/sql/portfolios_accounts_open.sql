-- Opens ledger accounts of one owner and asset idempotently (house accounts when the owner is NULL).
CREATE OR REPLACE FUNCTION portfolios_accounts_open(p_owner_id bigint, p_kinds text[], p_asset text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO portfolios_ledgeraccount (owner_id, kind, asset, balance, may_go_negative, created_at)
    SELECT p_owner_id, k, p_asset,
           CASE WHEN p_owner_id IS NULL THEN NULL ELSE 0 END,
           p_owner_id IS NULL,
           now()
      FROM unnest(p_kinds) AS k
    ON CONFLICT (owner_id, kind, asset) DO NOTHING
$$;
