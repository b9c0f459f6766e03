-- The accept step of an order: replay check, order row, outbox event, reservation (ADR 007). Returns the row it
-- wrote (or, for a repeated client_order_id, the existing order); the caller's statement (orders.services.ACCEPT_SQL)
-- writes the order's `accepted` event from that row, in the same statement.
DROP FUNCTION IF EXISTS orders_place(bigint, bigint, text, text, text, text, text, numeric, numeric, numeric, numeric,
                                     numeric, text, text, timestamptz);
DROP FUNCTION IF EXISTS orders_place(bigint, bigint, text, text, text, text, text, numeric, numeric, numeric, numeric,
                                     numeric, numeric, text, text, timestamptz);
DROP FUNCTION IF EXISTS orders_place(bigint, bigint, text, text, text, text, text, numeric, numeric, numeric, numeric,
                                     numeric, numeric, text, text, timestamptz, text, numeric, numeric);
CREATE FUNCTION orders_place(
    p_user_id bigint, p_instrument_id bigint, p_symbol text, p_client_order_id text, p_side text, p_type text,
    p_time_in_force text, p_qty numeric, p_notional numeric, p_limit_price numeric, p_stop_price numeric,
    p_protection_price numeric, p_reserve numeric, p_asset text, p_queue text, p_now timestamptz,
    p_order_class text, p_trail_price numeric, p_trail_percent numeric
) RETURNS TABLE (created boolean, placed orders_order)
LANGUAGE plpgsql AS $$
DECLARE
    v_available_kind text := CASE WHEN p_side = 'buy' THEN 'cash_available' ELSE 'securities_available' END;
    v_reserved_kind text := CASE WHEN p_side = 'buy' THEN 'cash_reserved' ELSE 'securities_reserved' END;
    v_available_id bigint;
    v_reserved_id bigint;
    v_balance numeric;
    v_order_id bigint;
    v_order orders_order;
    v_entry_id bigint;
    v_client_order_id text;
BEGIN
    IF p_client_order_id IS NOT NULL THEN
        SELECT * INTO v_order FROM orders_order o
         WHERE o.user_id = p_user_id AND o.client_order_id = p_client_order_id;
        IF FOUND THEN
            RETURN QUERY SELECT false, v_order;
            RETURN;
        END IF;
    END IF;

    SELECT a.id INTO v_available_id FROM portfolios_ledgeraccount a
     WHERE a.owner_id = p_user_id AND a.kind = v_available_kind AND a.asset = p_asset;
    SELECT a.id INTO v_reserved_id FROM portfolios_ledgeraccount a
     WHERE a.owner_id = p_user_id AND a.kind = v_reserved_kind AND a.asset = p_asset;
    IF v_available_id IS NULL OR v_reserved_id IS NULL THEN
        PERFORM portfolios_accounts_open(p_user_id, ARRAY[v_available_kind, v_reserved_kind], p_asset);
        SELECT a.id INTO v_available_id FROM portfolios_ledgeraccount a
         WHERE a.owner_id = p_user_id AND a.kind = v_available_kind AND a.asset = p_asset;
        SELECT a.id INTO v_reserved_id FROM portfolios_ledgeraccount a
         WHERE a.owner_id = p_user_id AND a.kind = v_reserved_kind AND a.asset = p_asset;
    END IF;

    v_order_id := nextval(pg_get_serial_sequence('orders_order', 'id'));
    v_client_order_id := coalesce(p_client_order_id, v_order_id::text);
    INSERT INTO orders_order (id, user_id, instrument_id, symbol, client_order_id, side, type, time_in_force, qty,
                              notional, limit_price, stop_price, protection_price, status, cum_qty, leaves_qty, avg_px,
                              reserved_amount, fees_paid, version, book_seq, stop_triggered, saga_state, reason,
                              order_class, trail_price, trail_percent, created_at, updated_at)
    VALUES (v_order_id, p_user_id, p_instrument_id, p_symbol, v_client_order_id, p_side, p_type, p_time_in_force,
            p_qty, p_notional, p_limit_price, p_stop_price, p_protection_price, 'new', 0, p_qty, NULL, p_reserve, 0, 1,
            NULL, false, 'created', '', p_order_class, p_trail_price, p_trail_percent, p_now, p_now)
    ON CONFLICT (user_id, client_order_id) DO NOTHING
    RETURNING * INTO v_order;
    IF NOT FOUND THEN  -- the same client_order_id committed meanwhile by a concurrent request
        SELECT * INTO v_order FROM orders_order o
         WHERE o.user_id = p_user_id AND o.client_order_id = p_client_order_id;
        RETURN QUERY SELECT false, v_order;
        RETURN;
    END IF;

    INSERT INTO outbox_outboxevent (event_id, topic, queue, partition_key, aggregate_type, aggregate_id, payload,
                                    status, attempts, available_at, last_error, created_at)
    VALUES (gen_random_uuid(), 'order.created', p_queue, p_symbol, 'order', v_order_id::text,
            jsonb_build_object('order_id', v_order_id, 'symbol', p_symbol, 'version', 1),
            'pending', 0, p_now, '', p_now);

    INSERT INTO portfolios_journalentry (kind, reference, memo, created_by_id, created_at)
    VALUES (CASE WHEN p_side = 'buy' THEN 'cash_reserve' ELSE 'shares_reserve' END, 'order:' || v_order_id, '',
            NULL, p_now)
    RETURNING id INTO v_entry_id;

    -- The ledger's lock order and strength: client accounts by primary key, FOR NO KEY UPDATE (a plain
    -- FOR UPDATE would conflict with the key-share locks other transactions' posting inserts take).
    PERFORM 1 FROM portfolios_ledgeraccount WHERE id IN (v_available_id, v_reserved_id) ORDER BY id FOR NO KEY UPDATE;
    SELECT balance INTO v_balance FROM portfolios_ledgeraccount WHERE id = v_available_id;
    IF v_balance < p_reserve THEN
        RAISE EXCEPTION 'insufficient funds' USING ERRCODE = 'BX001', DETAIL = v_balance::text;
    END IF;
    INSERT INTO portfolios_posting (entry_id, account_id, amount)
    SELECT v_entry_id, leg.account_id, leg.amount
      FROM (VALUES (v_available_id, -p_reserve), (v_reserved_id, p_reserve)) AS leg(account_id, amount)
     ORDER BY leg.account_id;

    RETURN QUERY SELECT true, v_order;
END
$$;
