// The trade page: live market data of one symbol, the order ticket, open orders, executions and the account.
"use strict";

(() => {
  const { $, api, apiAll, el, fmt, showBanner, hideBanner, toast, debounce, setConn } = BX;
  const root = $("#trade");
  if (!root) return;

  const instruments = Object.fromEntries(JSON.parse($("#instruments-data").textContent).map((i) => [i.symbol, i]));
  const state = {
    symbol: root.dataset.symbol,
    quote: {},
    book: { bids: new Map(), asks: new Map() },
    trades: [],
    streams: {}, // stream -> {epoch, seq} for the current symbol
    timeframe: "1Min", // the candle chart's interval
    orders: new Map(), // open orders by id
    portfolio: null,
    clientOrderId: null, // kept across retries of one submit so a resend cannot create a second order
  };
  const inst = () => instruments[state.symbol] || { tick_size: "0.01", lot_size: "1" };
  const priceDecimals = () => fmt.decimalsOf(inst().tick_size);
  const px = (s) => (s === null || s === undefined ? "—" : fmt.fixed(s, priceDecimals()));
  const banner = $("#banner");

  // --- market data ----------------------------------------------------------------------------------

  const chart = new CandleChart($("#chart"), { legend: $("#chart-legend"), empty: $("#chart-empty"),
    priceDecimals: priceDecimals(), timeframe: state.timeframe });

  function renderQuote() {
    const q = state.quote;
    const set = (key, value) => { root.querySelector(`[data-l1="${key}"]`).textContent = value; };
    set("bid", px(q.bid));
    set("ask", px(q.ask));
    set("bid_size", q.bid_size ? `× ${fmt.qty(q.bid_size)}` : "");
    set("ask_size", q.ask_size ? `× ${fmt.qty(q.ask_size)}` : "");
    set("last", px(q.last));
    set("spread", q.bid && q.ask ? fmt.fixed(Number(q.ask) - Number(q.bid), priceDecimals()) : "—");
    updateEstimate();
  }

  function renderBook() {
    const depth = 10;
    const asks = [...state.book.asks.values()].sort((a, b) => a.price - b.price).slice(0, depth);
    const bids = [...state.book.bids.values()].sort((a, b) => b.price - a.price).slice(0, depth);
    const maxQty = Math.max(1, ...asks.map((l) => +l.qty), ...bids.map((l) => +l.qty));
    const row = (level, side) => el("tr", { class: "level", style: `--w:${(+level.qty / maxQty) * 100}%`,
      dataset: { price: level.raw } },
    el("td", {}, el("button", { type: "button", class: "price", "aria-label": `Use ${side} price ${px(level.raw)}`,
      onclick: () => usePrice(level.raw) }, px(level.raw))),
    el("td", { class: "r" }, fmt.qty(level.qty)),
    el("td", { class: "r muted" }, level.count));
    $("#ladder-asks").replaceChildren(...asks.reverse().map((l) => row(l, "ask")));
    $("#ladder-bids").replaceChildren(...bids.map((l) => row(l, "bid")));
    const bestBid = bids[0];
    const bestAsk = asks[asks.length - 1];
    $("#ladder-spread").textContent = bestBid && bestAsk
      ? `spread ${fmt.fixed(bestAsk.price - bestBid.price, priceDecimals())}`
      : (bids.length || asks.length ? "one-sided book" : "empty book");
  }

  function setBook(snapshot) {
    const toMap = (levels) => new Map(levels.map((l) => [l.price, { ...l, raw: l.price, price: +l.price }]));
    state.book = { bids: toMap(snapshot.bids || []), asks: toMap(snapshot.asks || []) };
    renderBook();
  }

  function applyBook(update) {
    for (const [side, levels] of [["bids", update.bids || []], ["asks", update.asks || []]]) {
      for (const l of levels) {
        if (Number(l.qty) === 0) state.book[side].delete(l.price);
        else state.book[side].set(l.price, { ...l, raw: l.price, price: +l.price });
      }
    }
    renderBook();
  }

  function renderTrades(flashCount = 0) {
    const body = $("#trades-body");
    if (!state.trades.length) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 3, class: "muted" }, "No trades yet.")));
      return;
    }
    body.replaceChildren(...state.trades.slice(0, 30).map((t, i) => el("tr", { class: i < flashCount ? "flash" : "" },
      el("td", { class: "muted" }, fmt.time(t.executed_at)),
      el("td", { class: `r num ${t.aggressor_side === "sell" ? "sell" : "buy"}` }, px(t.price)),
      el("td", { class: "r num" }, fmt.qty(t.qty)))));
  }

  // Each stream of the symbol is numbered; a jump (or a new epoch) means pushes were lost: re-read it over REST.
  function inSequence(message, stream) {
    const known = state.streams[stream];
    if (!known || message.snapshot) return true;
    if (known.epoch && message.epoch !== known.epoch) return false; // Redis lost the numbering: start over
    if (message.seq <= known.seq) return null;
    return message.seq === known.seq + 1;
  }

  async function resync(stream) {
    const symbol = state.symbol;
    try {
      if (stream === "book") {
        const snap = await api(`market/${symbol}/book`);
        if (symbol !== state.symbol) return;
        state.streams.book = { epoch: snap.epoch, seq: snap.seq };
        setBook(snap);
      } else if (stream === "trades") {
        const snap = await api(`market/${symbol}/trades?limit=30`);
        if (symbol !== state.symbol) return;
        state.streams.trades = { epoch: snap.epoch, seq: snap.seq };
        state.trades = snap.trades;
        renderTrades();
      } else if (stream === "bars") {
        await loadBars();
      } else if (stream === "quote") {
        const snap = await api(`market/${symbol}/quote`);
        if (symbol !== state.symbol) return;
        state.streams.quote = { epoch: snap.epoch, seq: snap.seq };
        state.quote = snap;
        renderQuote();
      }
    } catch (err) {
      console.warn("resync failed", stream, err);
    }
  }

  async function loadBars() {
    const symbol = state.symbol;
    try {
      const timeframe = state.timeframe;
      const snap = await api(`market/${symbol}/bars?limit=240&timeframe=${timeframe}`);
      if (symbol !== state.symbol || timeframe !== state.timeframe) return;
      // The stream may already be ahead of this snapshot (a bar pushed meanwhile): keep the newer position.
      const known = state.streams.bars;
      if (!known || known.epoch !== snap.epoch || snap.seq > known.seq) state.streams.bars = { epoch: snap.epoch, seq: snap.seq };
      const newest = snap.bars.length ? Date.parse(snap.bars[snap.bars.length - 1].start) : -Infinity;
      const live = [...chart.bars.values()].filter((b) => b.start >= newest);
      chart.setBars(snap.bars, priceDecimals());
      live.forEach((b) => chart.upsert(b.raw));
    } catch (err) {
      console.warn("bars not loaded", err);
    }
  }

  function onMarket(m) {
    if (m.type === "error") {
      showBanner(banner, "error", m.message);
      return;
    }
    if (!m.symbol || m.symbol !== state.symbol) return;
    const stream = m.type === "bar" ? "bars" : m.type;
    if (!["quote", "book", "trades", "bars"].includes(stream)) return;
    // Candles of another interval: left over from before a switch (the server sends only the one subscribed to).
    if (stream === "bars" && (m.timeframe || "1Min") !== state.timeframe) return;
    const ok = inSequence(m, stream);
    if (ok === null) return; // older than what the page already shows
    if (ok === false && stream !== "quote") { // a quote message is complete in itself
      resync(stream);
      return;
    }
    state.streams[stream] = { epoch: m.epoch, seq: m.seq };
    if (stream === "quote") {
      state.quote = m;
      renderQuote();
    } else if (stream === "book") {
      if (m.snapshot) setBook(m); else applyBook(m);
    } else if (stream === "trades") {
      if (m.snapshot) {
        state.trades = m.trades;
        renderTrades();
      } else {
        state.trades = [...m.trades].reverse().concat(state.trades).slice(0, 100);
        renderTrades(m.trades.length);
      }
    } else if (m.type === "bars") {
      m.bars.forEach((b) => chart.upsert(b));
    } else {
      chart.upsert(m);
    }
  }

  const market = BX.reconnecting("/ws/market/", {
    onState: (s) => setConn($("#market-conn"), s, { live: "Live", connecting: "Connecting…", down: "Reconnecting…" }[s]),
    onOpen: () => {
      state.streams = {};
      if (!state.symbol) return;
      market.send({ action: "subscribe", symbols: [state.symbol], timeframe: state.timeframe });
      if (state.opened) loadBars(); // after a reconnect: the candles missed meanwhile
      state.opened = true;
    },
    onMessage: onMarket,
  });

  function showInstrument() {
    const i = inst();
    $("#symbol-name").textContent = i.name || "";
    const status = $("#symbol-status");
    status.hidden = i.trading_status !== "halted";
    status.textContent = "Halted";
    document.title = `${state.symbol} · Trade · BrokerX`;
    $("#hint-qty").textContent = `Lot size ${fmt.trimZeros(i.lot_size)}`;
    const ref = Number(i.reference_price);
    const band = Number(i.price_band_pct);
    $("#hint-price").textContent = Number.isFinite(ref * band) && ref > 0
      ? `Tick ${fmt.trimZeros(i.tick_size)} · allowed ${px(ref * (1 - band))}–${px(ref * (1 + band))}`
      : `Tick ${fmt.trimZeros(i.tick_size)}`;
    const step = fmt.trimZeros(i.tick_size);
    $("#order-limit").step = step;
    $("#order-stop").step = step;
    $("#order-qty").step = fmt.trimZeros(i.lot_size);
  }

  function selectSymbol(symbol) {
    if (symbol === state.symbol && state.loaded) return;
    const previous = state.symbol;
    state.symbol = symbol;
    state.loaded = true;
    state.quote = {};
    state.streams = {};
    state.trades = [];
    setBook({ bids: [], asks: [] });
    renderTrades();
    renderQuote();
    chart.setBars([], priceDecimals());
    showInstrument();
    const url = new URL(location.href);
    url.searchParams.set("symbol", symbol);
    history.replaceState(null, "", url);
    if (previous && previous !== symbol) market.send({ action: "unsubscribe", symbols: [previous] });
    market.send({ action: "subscribe", symbols: [symbol], timeframe: state.timeframe });
    loadBars();
    document.dispatchEvent(new CustomEvent("bx:symbol", { detail: { symbol } }));
  }

  $("#symbol").addEventListener("change", (e) => selectSymbol(e.target.value));

  // --- candle interval ------------------------------------------------------------------------------

  // Another interval: follow its candles on the socket (a new bars snapshot comes) and reload its history.
  function selectTimeframe(timeframe) {
    if (timeframe === state.timeframe) return;
    state.timeframe = timeframe;
    for (const button of document.querySelectorAll("#chart-intervals [data-timeframe]")) {
      button.setAttribute("aria-pressed", String(button.dataset.timeframe === timeframe));
    }
    delete state.streams.bars;
    chart.setTimeframe(timeframe);
    $("#chart-title").textContent = `${chart.label[0].toUpperCase()}${chart.label.slice(1)} candles`;
    if (!state.symbol) return;
    market.send({ action: "subscribe", symbols: [state.symbol], streams: ["bars"], timeframe });
    loadBars();
  }

  for (const button of document.querySelectorAll("#chart-intervals [data-timeframe]")) {
    button.addEventListener("click", () => selectTimeframe(button.dataset.timeframe));
  }

  // --- order ticket ---------------------------------------------------------------------------------

  const form = $("#ticket");
  const fields = { qty: $("#order-qty"), limit_price: $("#order-limit"), stop_price: $("#order-stop"),
    time_in_force: $("#order-tif"), type: $("#order-type") };
  const ticketError = $("#ticket-error");
  const side = () => form.querySelector("input[name=side]:checked").value;
  const needsLimit = (type) => type === "limit" || type === "stop_limit";
  const needsStop = (type) => type === "stop" || type === "stop_limit";

  function syncTicket() {
    const type = fields.type.value;
    form.querySelector('[data-for="limit"]').hidden = !needsLimit(type);
    form.querySelector('[data-for="stop"]').hidden = !needsStop(type);
    const s = side();
    const button = $("#ticket-submit");
    button.className = `submit ${s}`;
    const what = { market: "market", limit: "limit", stop: "stop", stop_limit: "stop-limit" }[type];
    button.textContent = `Place ${s} ${what} order`;
    updateEstimate();
  }

  function updateEstimate() {
    const qty = Number(fields.qty.value);
    const type = fields.type.value;
    let price = needsLimit(type) ? Number(fields.limit_price.value) : null;
    if (!price && type === "stop") price = Number(fields.stop_price.value);
    if (!price) price = Number(side() === "buy" ? state.quote.ask || state.quote.last : state.quote.bid || state.quote.last);
    $("#ticket-estimate").textContent = qty > 0 && price > 0 ? `Estimated value ≈ $${fmt.money(qty * price)}` : "";
  }

  function usePrice(price) {
    if (!needsLimit(fields.type.value)) fields.type.value = "limit";
    fields.limit_price.value = fmt.trimZeros(price);
    syncTicket();
    clearFieldError("limit_price");
    fields.limit_price.focus();
  }

  function onGrid(value, step) {
    const ratio = Number(value) / Number(step);
    return Math.abs(ratio - Math.round(ratio)) < 1e-9;
  }

  function validate(order) {
    const errors = {};
    const i = inst();
    if (order.qty === "") errors.qty = "Enter a quantity.";
    else if (!(Number(order.qty) > 0)) errors.qty = "Quantity must be more than 0.";
    else if (!onGrid(order.qty, i.lot_size)) errors.qty = `Quantity must be a multiple of the lot size ${fmt.trimZeros(i.lot_size)}.`;
    for (const [name, needed, what] of [["limit_price", needsLimit(order.type), "limit"], ["stop_price", needsStop(order.type), "stop"]]) {
      if (!needed) continue;
      const value = order[name];
      if (value === "" || value === undefined) errors[name] = `Enter a ${what} price.`;
      else if (!(Number(value) > 0)) errors[name] = `The ${what} price must be more than 0.`;
      else if (!onGrid(value, i.tick_size)) errors[name] = `The ${what} price must be a multiple of the tick size ${fmt.trimZeros(i.tick_size)}.`;
    }
    if (order.type === "market" && order.time_in_force === "gtc") {
      errors.time_in_force = "Market orders cannot be good till canceled; choose Day, IOC or FOK.";
    }
    return errors;
  }

  function setFieldError(name, message) {
    const input = fields[name];
    const box = $(`#err-${name}`);
    if (!input || !box) return false;
    input.setAttribute("aria-invalid", "true");
    box.textContent = message;
    box.hidden = false;
    return true;
  }
  function clearFieldError(name) {
    const input = fields[name];
    const box = $(`#err-${name}`);
    if (input) input.removeAttribute("aria-invalid");
    if (box) { box.hidden = true; box.textContent = ""; }
  }
  function clearErrors() {
    Object.keys(fields).forEach(clearFieldError);
    ticketError.hidden = true;
    ticketError.textContent = "";
  }

  // Which field an API refusal is about, so the message appears next to it.
  function fieldOf(error, order) {
    const code = error.code;
    if (["invalid_qty", "invalid_lot_size", "max_qty_exceeded"].includes(code)) return "qty";
    if (code === "invalid_time_in_force") return "time_in_force";
    if (code === "missing_limit_price" || code === "unexpected_limit_price") return "limit_price";
    if (code === "missing_stop_price" || code === "unexpected_stop_price") return "stop_price";
    if (["invalid_price", "invalid_tick_size", "price_out_of_band"].includes(code)) {
      return needsLimit(order.type) ? "limit_price" : needsStop(order.type) ? "stop_price" : null;
    }
    return null;
  }

  function showOrderError(error, order) {
    if (error.code === "validation_error" && error.details) {
      let placed = false;
      const rest = [];
      for (const [name, messages] of Object.entries(error.details)) {
        const text = [].concat(messages).join(" ");
        if (setFieldError(name, text)) placed = true;
        else rest.push(text);
      }
      if (rest.length || !placed) {
        ticketError.textContent = rest.length ? rest.join(" ") : error.message;
        ticketError.hidden = false;
      }
      return;
    }
    const name = fieldOf(error, order);
    if (!(name && setFieldError(name, error.message))) {
      ticketError.textContent = error.message;
      ticketError.hidden = false;
    }
  }

  form.addEventListener("change", (e) => {
    if (e.target.name === "type" && e.target.value === "market" && fields.time_in_force.value === "gtc") {
      fields.time_in_force.value = "day";
    }
    syncTicket();
  });
  form.addEventListener("input", (e) => {
    state.clientOrderId = null; // a changed order is a new order
    clearFieldError(e.target.name);
    updateEstimate();
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    const type = fields.type.value;
    const order = { symbol: state.symbol, side: side(), type, time_in_force: fields.time_in_force.value,
      qty: fields.qty.value.trim() };
    if (needsLimit(type)) order.limit_price = fields.limit_price.value.trim();
    if (needsStop(type)) order.stop_price = fields.stop_price.value.trim();
    const errors = validate(order);
    if (Object.keys(errors).length) {
      Object.entries(errors).forEach(([name, message]) => setFieldError(name, message));
      fields[Object.keys(errors)[0]].focus();
      return;
    }
    state.clientOrderId = state.clientOrderId || `web-${BX.uuid()}`;
    const button = $("#ticket-submit");
    button.disabled = true;
    try {
      const placed = await api("orders", { method: "POST", body: { ...order, client_order_id: state.clientOrderId } });
      state.clientOrderId = null;
      upsertOrder(placed);
      toast(`${placed.side === "buy" ? "Buy" : "Sell"} ${fmt.qty(placed.qty)} ${placed.symbol} accepted (#${placed.id})`, placed.side);
      hideBanner(banner);
      refreshPortfolio();
    } catch (error) {
      // Only a lost answer may be retried under the same client_order_id; a refusal is final for that id.
      if (error.status && error.status < 500) state.clientOrderId = null;
      showOrderError(error, order);
    } finally {
      button.disabled = false;
    }
  });

  // --- open orders ----------------------------------------------------------------------------------

  const ordersMessage = $("#orders-message");
  const isOpen = (o) => o.status === "new" || o.status === "partially_filled";

  function upsertOrder(order) {
    const editing = $(`#order-${order.id}`)?.classList.contains("editing");
    if (isOpen(order)) state.orders.set(order.id, order);
    else state.orders.delete(order.id);
    renderOrders(editing ? order.id : null);
  }

  async function loadOrders() {
    try {
      const rows = await apiAll("orders?status=open&limit=200");
      state.orders = new Map(rows.map((o) => [o.id, o]));
      const editing = document.querySelector("#orders-body tr.editing");
      renderOrders(editing ? Number(editing.dataset.id) : null);
    } catch (err) {
      showBanner(ordersMessage, "error", `Open orders could not be loaded: ${err.message}`);
    }
  }
  const loadOrdersSoon = debounce(loadOrders, 250);

  function renderOrders(editingId = null, drafts = null) {
    const body = $("#orders-body");
    const orders = [...state.orders.values()].sort((a, b) => b.id - a.id);
    $("#orders-count").textContent = orders.length ? `(${orders.length})` : "";
    if (!orders.length) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 10, class: "muted" }, "No open orders.")));
      return;
    }
    // Keep what the user typed in a row being edited when the row is redrawn.
    if (drafts === null) {
      drafts = {};
      const open = body.querySelector("tr.editing");
      if (open && Number(open.dataset.id) === editingId) {
        for (const input of open.querySelectorAll("input")) drafts[input.name] = input.value;
      }
    }
    body.replaceChildren(...orders.map((o) => (o.id === editingId ? editRow(o, drafts) : orderRow(o))));
  }

  function orderRow(o) {
    const d = fmt.decimalsOf((instruments[o.symbol] || {}).tick_size || "0.01");
    return el("tr", { id: `order-${o.id}`, dataset: { id: o.id } },
      el("td", {}, el("strong", {}, o.symbol)),
      el("td", { class: o.side }, o.side === "buy" ? "Buy" : "Sell"),
      el("td", {}, fmt.label(o.type)),
      // A notional order (placed over the API) shows the amount asked for beside the quantity it became.
      el("td", { class: "r num" }, o.notional ? `${fmt.qty(o.qty)} ($${fmt.money(o.notional)})` : fmt.qty(o.qty)),
      el("td", { class: "r num" }, fmt.qty(o.cum_qty)),
      el("td", { class: "r num" }, o.limit_price ? fmt.fixed(o.limit_price, d) : "—"),
      el("td", { class: "r num" }, o.stop_price ? fmt.fixed(o.stop_price, d) : "—"),
      el("td", {}, o.time_in_force.toUpperCase()),
      el("td", {}, el("span", { class: "status" }, fmt.label(o.status))),
      el("td", {}, el("div", { class: "actions" },
        el("button", { type: "button", class: "btn-sm btn-ghost", "aria-label": `Modify order ${o.id}`,
          onclick: () => { renderOrders(o.id); $(`#order-${o.id} input`)?.focus(); } }, "Modify"),
        el("button", { type: "button", class: "btn-sm btn-danger", "aria-label": `Cancel order ${o.id}`,
          onclick: (e) => cancelOrder(o.id, e.currentTarget) }, "Cancel"))));
  }

  function editRow(o, drafts) {
    const input = (name, value, labelText) => el("input", { name, type: "number", step: "any", min: "0",
      inputmode: "decimal", value: drafts[name] ?? fmt.trimZeros(value), "aria-label": `${labelText} for order ${o.id}` });
    const save = (e) => {
      e.preventDefault();
      modifyOrder(o.id, e.currentTarget.closest("tr"));
    };
    return el("tr", { id: `order-${o.id}`, class: "editing", dataset: { id: o.id } },
      el("td", {}, el("strong", {}, o.symbol)),
      el("td", { class: o.side }, o.side === "buy" ? "Buy" : "Sell"),
      el("td", {}, fmt.label(o.type)),
      el("td", { class: "r" }, input("qty", o.qty, "New total quantity")),
      el("td", { class: "r num" }, fmt.qty(o.cum_qty)),
      el("td", { class: "r" }, o.limit_price !== null ? input("limit_price", o.limit_price, "Limit price") : "—"),
      el("td", { class: "r" }, o.stop_price !== null ? input("stop_price", o.stop_price, "Stop price") : "—"),
      el("td", {}, o.time_in_force.toUpperCase()),
      el("td", {}, el("span", { class: "status" }, `v${o.version}`)),
      el("td", {}, el("div", { class: "actions" },
        el("button", { type: "button", class: "btn-sm", onclick: save, "aria-label": `Save changes to order ${o.id}` }, "Save"),
        el("button", { type: "button", class: "btn-sm btn-ghost", onclick: () => { hideBanner(ordersMessage); renderOrders(); } }, "Discard"))));
  }

  function describe(o) {
    return `#${o.id} ${o.side} ${fmt.qty(o.qty)} ${o.symbol}: ${fmt.label(o.status)}, ${fmt.qty(o.cum_qty)} filled`;
  }

  async function modifyOrder(id, row, retried = false) {
    const order = state.orders.get(id);
    if (!order) return;
    const body = { version: order.version };
    for (const input of row.querySelectorAll("input")) {
      const value = input.value.trim();
      if (value === "") {
        input.setAttribute("aria-invalid", "true");
        showBanner(ordersMessage, "error", "Fill in every field of the order, or discard the change.");
        input.focus();
        return;
      }
      if (Number(value) !== Number(order[input.name])) body[input.name] = value;
    }
    if (Object.keys(body).length === 1) {
      renderOrders();
      return;
    }
    row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const updated = await api(`orders/${id}`, { method: "PATCH", body });
      hideBanner(ordersMessage);
      state.orders.set(id, updated);
      renderOrders();
      toast(`Order #${id} modified`);
      refreshPortfolio();
    } catch (error) {
      handleOrderConflict(error, id, "modify", retried);
    }
  }

  async function cancelOrder(id, button, retried = false) {
    const order = state.orders.get(id);
    if (!order) return;
    if (button) button.disabled = true;
    try {
      const canceled = await api(`orders/${id}/cancel`, { method: "POST", body: { version: order.version } });
      hideBanner(ordersMessage);
      upsertOrder(canceled);
      toast(`Order #${id} canceled`);
      refreshPortfolio();
    } catch (error) {
      if (button) button.disabled = false;
      handleOrderConflict(error, id, "cancel", retried);
    }
  }

  // What the trader sees of an order; the version also moves when the order merely enters the book.
  const VISIBLE = ["status", "qty", "cum_qty", "leaves_qty", "limit_price", "stop_price", "time_in_force"];
  const sameForTrader = (a, b) => a && b && VISIBLE.every((k) => String(a[k]) === String(b[k]));

  // 409: the order changed under the user (a fill, another window). Show it as it is now and let them retry.
  // A change they could not see (only the version moved) is retried once at once with the current version.
  function handleOrderConflict(error, id, action, retried) {
    const current = error.details && error.details.current;
    if (error.code === "stale_version" && current) {
      const before = state.orders.get(id);
      if (!retried && sameForTrader(before, current)) {
        state.orders.set(id, { ...before, version: current.version });
        if (action === "cancel") cancelOrder(id, null, true);
        else modifyOrder(id, document.querySelector(`#order-${id}`), true);
        return;
      }
      state.orders.set(id, current);
      if (action === "modify") {
        // Keep only the values the user changed; the others show the order as it is now.
        const drafts = {};
        for (const input of document.querySelectorAll(`#order-${id} input`)) {
          if (!before || Number(input.value) !== Number(before[input.name])) drafts[input.name] = input.value;
        }
        renderOrders(id, drafts);
        showBanner(ordersMessage, "error", `Order ${describe(current)} (version ${current.version}) changed before your modification arrived. Review it and save again.`);
      } else {
        renderOrders();
        showBanner(ordersMessage, "error", `Order ${describe(current)} changed before your cancel arrived.`,
          el("button", { type: "button", class: "btn-sm btn-danger", onclick: () => cancelOrder(id) }, "Cancel it now"));
      }
      return;
    }
    if (error.code === "order_not_open") {
      if (current) upsertOrder(current); else { state.orders.delete(id); renderOrders(); }
      showBanner(ordersMessage, "info", current ? `Order ${describe(current)}: nothing left to ${action}.` : error.message);
      return;
    }
    renderOrders(action === "modify" ? id : null);
    showBanner(ordersMessage, "error", error.message);
  }

  // --- executions -----------------------------------------------------------------------------------

  const feed = $("#fills");
  const EXEC_TEXT = { new: "accepted", canceled: "canceled", replaced: "modified", rejected: "rejected",
    expired: "expired", triggered: "stop triggered" };

  function reportItem(r, live) {
    const d = fmt.decimalsOf((instruments[r.symbol] || {}).tick_size || "0.01");
    const verb = r.side === "buy" ? "Bought" : "Sold";
    const what = r.exec_type === "trade"
      ? `${verb} ${fmt.qty(r.last_qty)} ${r.symbol} @ ${fmt.fixed(r.last_px, d)}`
      : `${r.side === "buy" ? "Buy" : "Sell"} ${r.symbol} #${r.order_id} ${EXEC_TEXT[r.exec_type] || fmt.label(r.exec_type)}${r.reason ? ` (${fmt.label(r.reason)})` : ""}`;
    const detail = r.exec_type === "trade"
      ? `${fmt.qty(r.cum_qty)} done, ${fmt.qty(r.leaves_qty)} left${r.avg_px ? ` · avg ${fmt.fixed(r.avg_px, d)}` : ""}`
      : `#${r.order_id}`;
    return el("li", { class: live ? "new" : "", dataset: { seq: r.seq, execType: r.exec_type } },
      el("span", { class: "muted num" }, fmt.time(r.timestamp)),
      el("span", { class: `kind ${r.exec_type === "trade" ? r.side : "muted"}` }, r.exec_type === "trade" ? "Fill" : fmt.label(r.exec_type)),
      el("span", {}, el("span", { class: "what" }, what), " ", el("span", { class: "muted small" }, detail)),
      el("span", { class: "status" }, fmt.label(r.order_status)));
  }

  const afterReports = debounce(() => { loadOrders(); refreshPortfolio(); }, 150);

  BX.orderStream({
    onState: (s) => setConn($("#orders-conn"), s, { live: "Live", connecting: "Connecting…", down: "Reconnecting…" }[s]),
    onReport: (r, { live }) => {
      feed.prepend(reportItem(r, live));
      while (feed.children.length > 100) feed.lastElementChild.remove();
      $("#fills-empty").hidden = true;
      if (!live) return;
      if (r.order && r.order.id) upsertOrder(r.order);
      if (r.exec_type === "trade") {
        toast(`${r.side === "buy" ? "Bought" : "Sold"} ${fmt.qty(r.last_qty)} ${r.symbol} @ ${fmt.fixed(r.last_px, priceDecimals())}`, r.side);
      }
      afterReports();
    },
  });
  // History is loaded without announcing it; new executions are announced by the log.
  setTimeout(() => feed.removeAttribute("aria-busy"), 1500);

  // --- account --------------------------------------------------------------------------------------

  async function refreshPortfolio() {
    try {
      const pf = await api("portfolio");
      state.portfolio = pf;
      for (const node of root.querySelectorAll("[data-pf]")) {
        const key = node.dataset.pf;
        const pnl = key.endsWith("pnl");
        node.textContent = pnl ? fmt.signed(pf[key]) : `$${fmt.money(pf[key])}`;
        node.className = `num ${pnl ? fmt.signClass(pf[key]) : ""}`;
      }
      const body = $("#positions-body");
      const positions = pf.positions.filter((p) => Number(p.qty) !== 0);
      body.replaceChildren(...(positions.length ? positions.map((p) => el("tr", { dataset: { symbol: p.symbol } },
        el("td", {}, el("a", { href: `?symbol=${encodeURIComponent(p.symbol)}`, onclick: (e) => {
          if (instruments[p.symbol]) { e.preventDefault(); $("#symbol").value = p.symbol; selectSymbol(p.symbol); }
        } }, p.symbol)),
        el("td", { class: "r num" }, fmt.qty(p.qty)),
        el("td", { class: "r num" }, fmt.money(p.avg_cost)),
        el("td", { class: "r num" }, fmt.money(p.market_value)),
        el("td", { class: `r num ${fmt.signClass(p.unrealized_pnl)}` }, fmt.signed(p.unrealized_pnl))))
        : [el("tr", { class: "empty" }, el("td", { colspan: 5, class: "muted" }, "No positions."))]));
    } catch (err) {
      showBanner(banner, "error", `Account figures could not be loaded: ${err.message}`);
    }
  }

  // Market values move with prices even without fills of ours.
  setInterval(() => { if (!document.hidden) refreshPortfolio(); }, 20000);

  // --- start ----------------------------------------------------------------------------------------
  if (root.dataset.canTrade !== "1") {
    showBanner(banner, "info", "Your e-mail address is not verified yet: you can watch the market, but not trade or deposit.");
  }
  syncTicket();
  if (state.symbol) {
    state.loaded = true;
    showInstrument();
    renderQuote();
    renderBook();
    loadBars();
  }
  loadOrders();
  refreshPortfolio();

  // For the page's other panels (the watchlist): switch the symbol as the picker does.
  BX.tradePage = {
    symbol: () => state.symbol,
    selectSymbol: (symbol) => {
      if (!instruments[symbol]) return false;
      $("#symbol").value = symbol;
      selectSymbol(symbol);
      return true;
    },
  };
})();
