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
    updateTrailHint();
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
      // A trailing stop's mark and stop move with trades, without an execution report: show where they are now.
      if (!m.snapshot && [...state.orders.values()].some((o) => o.type === "trailing_stop" && o.symbol === m.symbol && isOpen(o))) {
        loadOrdersSoon();
      }
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
    for (const id of ["order-limit", "order-stop", "order-take-profit", "order-stop-loss", "order-stop-loss-limit",
      "order-trail-price"]) $(`#${id}`).step = step;
    $("#order-qty").step = fmt.trimZeros(i.lot_size);
    syncTicket(); // whether the symbol takes orders by amount
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
  const fields = { qty: $("#order-qty"), notional: $("#order-notional"), limit_price: $("#order-limit"),
    stop_price: $("#order-stop"), time_in_force: $("#order-tif"), type: $("#order-type"),
    order_class: $("#order-class"), take_profit: $("#order-take-profit"), stop_loss: $("#order-stop-loss"),
    stop_loss_limit: $("#order-stop-loss-limit"), trail_price: $("#order-trail-price"),
    trail_percent: $("#order-trail-percent") };
  const ticketError = $("#ticket-error");
  const checked = (name) => form.querySelector(`input[name=${name}]:checked`).value;
  const side = () => checked("side");
  const needsLimit = (type) => type === "limit" || type === "stop_limit";
  const needsStop = (type) => type === "stop" || type === "stop_limit";
  const show = (key, visible) => { form.querySelector(`[data-for="${key}"]`).hidden = !visible; };

  // The server's rules for a class (orders/checks.py check_order_class), so the ticket offers only what it accepts:
  // a bracket's or an OTO's entry is a market or limit buy whose exits sell; an OCO pair is a limit sell at the
  // take-profit with a stop-loss of the same quantity. No short selling, so exits always sell.
  const CLASSES = {
    simple: { types: null, side: null, tifs: null, hint: "" },
    bracket: { types: ["market", "limit"], side: "buy", tifs: ["day", "gtc"],
      hint: "Buys, then sells what it bought at the take-profit or at the stop-loss, whichever comes first." },
    oco: { types: ["limit"], side: "sell", tifs: ["day", "gtc"],
      hint: "Sells shares you hold at the take-profit or at the stop-loss, whichever comes first." },
    oto: { types: ["market", "limit"], side: "buy", tifs: ["day", "gtc"],
      hint: "Buys, then sells what it bought with one exit." },
  };
  const orderClass = () => fields.order_class.value;
  // By amount: market day orders of a simple class on an instrument traded in fractions of a share.
  const canUseAmount = () => inst().fractionable && fields.type.value === "market" && orderClass() === "simple";
  const byAmount = () => canUseAmount() && checked("sizing") === "notional";
  const trailBy = () => checked("trail_by");
  const lastPrice = () => state.quote.last || inst().last_price || null;

  // The price band as the server works it out (orders/checks.py price_band): in ticks, inward.
  function band() {
    const i = inst();
    const ref = Number(i.reference_price);
    const width = ref * Number(i.price_band_pct);
    const tick = Number(i.tick_size);
    if (!(ref > 0 && tick > 0)) return null;
    const ticks = (x) => Math.round(x / tick * 1e6) / 1e6; // drop float noise before rounding to a tick
    return { low: Math.max(Math.ceil(ticks(ref - width)) * tick, tick), high: Math.floor(ticks(ref + width)) * tick };
  }

  function syncTicket() {
    const cls = orderClass();
    const rule = CLASSES[cls];
    // Options the class does not allow are disabled; a value it does not allow moves to one it does.
    for (const option of fields.type.options) option.disabled = Boolean(rule.types && !rule.types.includes(option.value));
    if (rule.types && !rule.types.includes(fields.type.value)) fields.type.value = rule.types.includes("limit") ? "limit" : rule.types[0];
    const type = fields.type.value;
    const amount = byAmount();
    const tifs = amount ? ["day"] : rule.tifs;
    for (const option of fields.time_in_force.options) option.disabled = Boolean(tifs && !tifs.includes(option.value));
    if (tifs && !tifs.includes(fields.time_in_force.value)) fields.time_in_force.value = tifs[0];

    const hint = $("#hint-class");
    hint.textContent = rule.hint;
    hint.hidden = !rule.hint;
    show("sizing", canUseAmount());
    show("qty", !amount);
    show("notional", amount);
    show("limit", needsLimit(type) && cls !== "oco"); // an OCO's limit is its take-profit
    show("stop", needsStop(type));
    show("trail", type === "trailing_stop");
    show("trail_price", trailBy() === "price");
    show("trail_percent", trailBy() === "percent");
    show("exits", cls !== "simple");
    show("oto-leg", cls === "oto");
    const otoLeg = checked("oto_leg");
    show("take_profit", cls !== "oto" || otoLeg === "take_profit");
    show("stop_loss", cls !== "oto" || otoLeg === "stop_loss");
    $("#hint-stop-loss-limit").hidden = cls === "oto" && otoLeg !== "stop_loss";
    $("#exits-legend").textContent = cls === "oto" ? "Exit (sell)" : "Exits (sell)";
    $("#hint-exits").textContent = cls === "bracket" || cls === "oto"
      ? "The exit orders are held until the entry fills, then sized by its fills."
      : cls === "oco" ? "Both exits are for the same quantity; when one fills, the other is canceled." : "";
    updateTrailHint();

    const s = side();
    const button = $("#ticket-submit");
    button.className = `submit ${s}`;
    const what = { market: "market", limit: "limit", stop: "stop", stop_limit: "stop-limit", trailing_stop: "trailing stop" }[type];
    button.textContent = cls === "simple" ? `Place ${s} ${what} order`
      : cls === "oco" ? "Place OCO sell order" : `Place ${cls === "bracket" ? "bracket" : "OTO"} ${s} order`;
    updateEstimate();
  }

  function updateTrailHint() {
    const last = lastPrice();
    $("#hint-trail").textContent = (side() === "sell"
      ? "The stop trails the highest price since the order by this much, and sells at market when the price falls to it."
      : "The stop trails the lowest price since the order by this much, and buys at market when the price rises to it.")
      + (last ? ` Last trade ${px(last)}.` : " This symbol has not traded yet: a trailing stop needs a last trade price.");
  }

  // What a notional order becomes: the server sizes it at the band's edge on its side, so it never pays more.
  function notionalQty(amount) {
    const b = band();
    const lot = Number(inst().lot_size);
    if (!b || !(lot > 0) || !(amount > 0)) return null;
    const price = side() === "buy" ? b.high : b.low;
    const lots = Math.floor(Math.round(amount / (price * lot) * 1e9) / 1e9);
    return { qty: lots * lot, price, smallest: Math.ceil(price * lot * 100 - 1e-9) / 100 };
  }

  function updateEstimate() {
    const box = $("#ticket-estimate");
    const lotPlaces = fmt.decimalsOf(inst().lot_size);
    if (byAmount()) {
      const sized = notionalQty(Number(fields.notional.value));
      box.textContent = sized && sized.qty > 0
        ? `About ${fmt.fixed(sized.qty, lotPlaces)} shares (sized at ${px(sized.price)}, the band's edge, so the amount is never exceeded)`
        : "";
      return;
    }
    const qty = Number(fields.qty.value);
    const type = fields.type.value;
    const cls = orderClass();
    let price = cls === "oco" ? Number(fields.take_profit.value) : needsLimit(type) ? Number(fields.limit_price.value) : null;
    if (!price && type === "stop") price = Number(fields.stop_price.value);
    if (!price) price = Number(side() === "buy" ? state.quote.ask || state.quote.last : state.quote.bid || state.quote.last);
    let text = qty > 0 && price > 0 ? `Estimated value ≈ $${fmt.money(qty * price)}` : "";
    // A bracket's span between its exits, against the entry's price.
    const tp = Number(fields.take_profit.value);
    const sl = Number(fields.stop_loss.value);
    if (text && cls === "bracket" && tp > price && sl > 0 && sl < price) {
      text += ` · gain at take-profit $${fmt.money((tp - price) * qty)}, loss at stop-loss $${fmt.money((price - sl) * qty)}`;
    }
    box.textContent = text;
  }

  function usePrice(price) {
    const target = orderClass() === "oco" ? "take_profit" : "limit_price";
    if (target === "limit_price" && !needsLimit(fields.type.value)) fields.type.value = "limit";
    fields[target].value = fmt.trimZeros(price);
    syncTicket();
    clearFieldError(target);
    fields[target].focus();
  }

  function onGrid(value, step) {
    const ratio = Number(value) / Number(step);
    return Math.abs(ratio - Math.round(ratio)) < 1e-9;
  }

  // The order as the ticket reads it: flat, with the legs' prices as they were typed (see apiBody for the wire form).
  function readTicket() {
    const type = fields.type.value;
    const cls = orderClass();
    const value = (name) => fields[name].value.trim();
    const order = { symbol: state.symbol, side: side(), type, time_in_force: fields.time_in_force.value, order_class: cls };
    if (byAmount()) order.notional = value("notional"); else order.qty = value("qty");
    if (needsLimit(type) && cls !== "oco") order.limit_price = value("limit_price");
    if (needsStop(type)) order.stop_price = value("stop_price");
    if (type === "trailing_stop") order[trailBy() === "price" ? "trail_price" : "trail_percent"] = value(`trail_${trailBy()}`);
    if (cls !== "simple") {
      const leg = checked("oto_leg");
      if (cls !== "oto" || leg === "take_profit") order.take_profit = value("take_profit");
      if (cls !== "oto" || leg === "stop_loss") {
        order.stop_loss = value("stop_loss");
        if (value("stop_loss_limit") !== "") order.stop_loss_limit = value("stop_loss_limit");
      }
    }
    if (cls === "oco") order.limit_price = order.take_profit;
    return order;
  }

  function apiBody(order) {
    const body = { ...order };
    delete body.take_profit;
    delete body.stop_loss;
    delete body.stop_loss_limit;
    if (order.order_class === "simple") delete body.order_class;
    if (order.take_profit !== undefined) body.take_profit = { limit_price: order.take_profit };
    if (order.stop_loss !== undefined) {
      body.stop_loss = { stop_price: order.stop_loss };
      if (order.stop_loss_limit !== undefined) body.stop_loss.limit_price = order.stop_loss_limit;
    }
    return body;
  }

  // The ticket's fields top to bottom: the first with an error takes the focus.
  const FIELD_ORDER = ["order_class", "type", "time_in_force", "qty", "notional", "limit_price", "stop_price",
    "trail_price", "trail_percent", "take_profit", "stop_loss", "stop_loss_limit"];
  const PRICE_WORDS = { limit_price: "limit price", stop_price: "stop price", take_profit: "take-profit price",
    stop_loss: "stop-loss trigger", stop_loss_limit: "stop-loss limit" };

  function validate(order) {
    const errors = {};
    const i = inst();
    const cls = order.order_class;
    const rule = CLASSES[cls];
    if (rule.side && order.side !== rule.side) {
      errors.order_class = cls === "oco"
        ? "An OCO pair sells shares you hold: choose Sell."
        : `A ${cls === "oto" ? "OTO" : cls} entry is a buy; its exits sell what it bought (no short selling). Choose Buy.`;
    }
    if (order.notional !== undefined) {
      if (order.notional === "") errors.notional = "Enter an amount.";
      else if (!(Number(order.notional) > 0)) errors.notional = "The amount must be more than 0.";
      else if (!onGrid(order.notional, "0.01")) errors.notional = "The amount is in dollars and cents.";
      else {
        const sized = notionalQty(Number(order.notional));
        if (sized && sized.qty <= 0) errors.notional = `Less than one lot (${fmt.trimZeros(i.lot_size)}) at ${px(sized.price)}: the smallest amount is $${fmt.money(sized.smallest)}.`;
      }
      if (order.time_in_force !== "day") errors.time_in_force = "Orders by amount are day orders.";
    } else if (order.qty === "") errors.qty = "Enter a quantity.";
    else if (!(Number(order.qty) > 0)) errors.qty = "Quantity must be more than 0.";
    else if (!onGrid(order.qty, i.lot_size)) errors.qty = `Quantity must be a multiple of the lot size ${fmt.trimZeros(i.lot_size)}.`;

    const prices = [["limit_price", order.order_class !== "oco" && needsLimit(order.type)], ["stop_price", needsStop(order.type)],
      ["take_profit", order.take_profit !== undefined], ["stop_loss", order.stop_loss !== undefined],
      ["stop_loss_limit", order.stop_loss_limit !== undefined]];
    for (const [name, needed] of prices) {
      if (!needed) continue;
      const value = order[name];
      const what = PRICE_WORDS[name];
      if (value === "" || value === undefined) errors[name] = `Enter a ${what}.`;
      else if (!(Number(value) > 0)) errors[name] = `The ${what} must be more than 0.`;
      else if (!onGrid(value, i.tick_size)) errors[name] = `The ${what} must be a multiple of the tick size ${fmt.trimZeros(i.tick_size)}.`;
    }
    // The exits around each other and around a limit entry's price (take-profit above, stop-loss below).
    const tp = Number(order.take_profit);
    const sl = Number(order.stop_loss);
    const entry = cls !== "oco" && order.limit_price ? Number(order.limit_price) : null;
    if (!errors.take_profit && !errors.stop_loss && tp > 0 && sl > 0 && !(tp > sl)) {
      errors.take_profit = `The take-profit must be above the stop-loss trigger (${px(order.stop_loss)}).`;
    }
    if (entry && !errors.limit_price) {
      if (tp > 0 && !errors.take_profit && !(tp > entry)) errors.take_profit = `The take-profit must be above the entry's limit price (${px(order.limit_price)}).`;
      if (sl > 0 && !errors.stop_loss && !(sl < entry)) errors.stop_loss = `The stop-loss trigger must be below the entry's limit price (${px(order.limit_price)}).`;
    }

    if (order.type === "trailing_stop") {
      const name = order.trail_price !== undefined ? "trail_price" : "trail_percent";
      const value = order[name];
      const last = lastPrice();
      if (value === "") errors[name] = name === "trail_price" ? "Enter a trail amount." : "Enter a trail percent.";
      else if (!(Number(value) > 0)) errors[name] = "The trail must be more than 0.";
      else if (name === "trail_percent" && !(Number(value) < 100 && onGrid(value, "0.01"))) errors[name] = "The trail percent is below 100, to 0.01.";
      else if (name === "trail_price" && !onGrid(value, i.tick_size)) errors[name] = `The trail amount must be a multiple of the tick size ${fmt.trimZeros(i.tick_size)}.`;
      else if (!last) errors[name] = "A trailing stop starts from the last trade price, and this symbol has not traded yet.";
      else if (name === "trail_price" && order.side === "sell" && !(Number(value) < Number(last))) errors[name] = `The trail amount must be below the last trade price (${px(last)}).`;
    }
    if (cls !== "simple" && !["day", "gtc"].includes(order.time_in_force)) errors.time_in_force = "Orders with exits are Day or Good till canceled.";
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
    const message = error.message || "";
    if (["invalid_qty", "invalid_lot_size", "max_qty_exceeded"].includes(code)) return order.notional !== undefined ? "notional" : "qty";
    if (["notional_not_supported", "not_fractionable", "notional_too_small"].includes(code)) return "notional";
    if (code === "max_notional_exceeded" && order.notional !== undefined) return "notional";
    if (code === "invalid_time_in_force") return "time_in_force";
    if (code === "invalid_order_class" || code === "missing_legs" || code === "unexpected_legs") return "order_class";
    if (code === "invalid_legs") {
      return message.startsWith("stop_loss") ? "stop_loss" : "take_profit";
    }
    if (code === "invalid_trail" || code === "no_last_price") return order.trail_percent !== undefined ? "trail_percent" : "trail_price";
    if (code === "missing_limit_price" || code === "unexpected_limit_price") return order.order_class === "oco" ? "take_profit" : "limit_price";
    if (code === "missing_stop_price" || code === "unexpected_stop_price") return needsStop(order.type) ? "stop_price" : "stop_loss";
    if (["invalid_price", "invalid_tick_size", "price_out_of_band"].includes(code)) {
      // The price named in the message, else the only price of the order.
      const names = ["limit_price", "stop_price", "take_profit", "stop_loss", "stop_loss_limit", "trail_price"]
        .filter((name) => order[name] !== undefined && !(name === "limit_price" && order.order_class === "oco"));
      const named = (message.match(/\d+(?:\.\d+)?/) || [])[0];
      const match = names.find((name) => named !== undefined && Number(order[name]) === Number(named));
      return match || (names.length === 1 ? names[0] : null);
    }
    return null;
  }

  // A refusal's field in the request body, for validation errors ("take_profit": ["limit_price: ..."]).
  function detailField(name, text) {
    if (name === "stop_loss" && text.startsWith("limit_price")) return "stop_loss_limit";
    return name;
  }

  function showOrderError(error, order) {
    if (error.code === "validation_error" && error.details) {
      let placed = false;
      const rest = [];
      for (const [name, messages] of Object.entries(error.details)) {
        const text = [].concat(messages).join(" ");
        if (setFieldError(detailField(name, text), text)) placed = true;
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
    if (e.target.name === "order_class") {
      // Moving to a class sets the side it takes; the user may still change it (validation then says why not).
      const rule = CLASSES[orderClass()];
      if (rule.side) form.querySelector(`#side-${rule.side}`).checked = true;
      clearFieldError("order_class");
    }
    if (e.target.name === "side") clearFieldError("order_class");
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
    const order = readTicket();
    const errors = validate(order);
    if (Object.keys(errors).length) {
      Object.entries(errors).forEach(([name, message]) => setFieldError(name, message));
      fields[FIELD_ORDER.find((name) => errors[name])].focus();
      return;
    }
    state.clientOrderId = state.clientOrderId || `web-${BX.uuid()}`;
    const button = $("#ticket-submit");
    button.disabled = true;
    try {
      const placed = await api("orders", { method: "POST", body: { ...apiBody(order), client_order_id: state.clientOrderId } });
      state.clientOrderId = null;
      upsertOrder(placed);
      (placed.legs || []).forEach((leg) => upsertOrder(leg));
      const size = placed.notional ? `$${fmt.money(placed.notional)} (${fmt.qty(placed.qty)})` : fmt.qty(placed.qty);
      const what = placed.order_class && placed.order_class !== "simple" ? ` ${CLASS_NAME[placed.order_class]}` : "";
      toast(`${placed.side === "buy" ? "Buy" : "Sell"}${what} ${size} ${placed.symbol} accepted (#${placed.id})`, placed.side);
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

  // Open orders, with the legs of a class under the order they belong to (a bracket's or an OTO's entry, an OCO
  // pair's first order). A class member that closes stays in view, faded, while its class has an open order (an
  // entry that filled above its live exits) and for a few seconds after the class ends (the exit that filled and
  // the sibling the fill canceled), so the trader sees what happened to it.
  const ordersMessage = $("#orders-message");
  const CLASS_NAME = { bracket: "bracket", oco: "OCO", oto: "OTO" };
  const CLOSED_LINGER_MS = 12000;
  const isOpen = (o) => o.status === "new" || o.status === "partially_filled" || o.status === "held";
  const inClass = (o) => Boolean(o.order_class) && o.order_class !== "simple";
  const rootOf = (o) => o.parent_id || o.id;

  function upsertOrder(order) {
    const editing = $(`#order-${order.id}`)?.classList.contains("editing");
    if (isOpen(order)) state.orders.set(order.id, order);
    else if (inClass(order)) state.orders.set(order.id, { ...order, closedAt: state.orders.get(order.id)?.closedAt || Date.now() });
    else state.orders.delete(order.id);
    renderOrders(editing ? order.id : null);
  }

  // The closed members kept in view: those of a class with an open order, and those closed a moment ago.
  function keptClosed(orders) {
    const openRoots = new Set([...orders.values()].filter(isOpen).map(rootOf));
    const lastClosed = new Map();
    for (const o of orders.values()) {
      if (!isOpen(o)) lastClosed.set(rootOf(o), Math.max(lastClosed.get(rootOf(o)) || 0, o.closedAt || 0));
    }
    const now = Date.now();
    return [...orders.values()].filter((o) => !isOpen(o)
      && (openRoots.has(rootOf(o)) || now - lastClosed.get(rootOf(o)) < CLOSED_LINGER_MS));
  }
  const pruneSoon = debounce(() => renderOrders(currentlyEditing()), CLOSED_LINGER_MS + 100);

  const currentlyEditing = () => {
    const editing = document.querySelector("#orders-body tr.editing");
    return editing ? Number(editing.dataset.id) : null;
  };

  async function loadOrders() {
    try {
      const rows = await apiAll("orders?status=open&limit=200");
      // A report that arrived while the list was being read is newer than the row read: keep the newer version.
      const next = new Map(rows.map((o) => {
        const known = state.orders.get(o.id);
        return [o.id, known && (known.version || 0) > (o.version || 0) ? known : o];
      }));
      for (const o of keptClosed(state.orders)) if (!next.has(o.id)) next.set(o.id, o);
      // The entry of live legs that has filled (or the first order of an OCO pair): shown above them.
      const missing = [...new Set(rows.filter((o) => o.parent_id && !next.has(o.parent_id)).map((o) => o.parent_id))];
      const parents = await Promise.all(missing.map((id) => api(`orders/${id}`).catch(() => null)));
      for (const parent of parents) if (parent) next.set(parent.id, { ...parent, closedAt: 0 });
      state.orders = next;
      renderOrders(currentlyEditing());
    } catch (err) {
      showBanner(ordersMessage, "error", `Open orders could not be loaded: ${err.message}`);
    }
  }
  const loadOrdersSoon = debounce(loadOrders, 250);

  function renderOrders(editingId = null, drafts = null) {
    const body = $("#orders-body");
    const kept = new Set(keptClosed(state.orders));
    const shown = new Map([...state.orders].filter(([, o]) => isOpen(o) || kept.has(o)));
    state.orders = new Map([...state.orders].filter(([id]) => shown.has(id)));
    const openCount = [...shown.values()].filter(isOpen).length;
    $("#orders-count").textContent = openCount ? `(${openCount})` : "";
    if (shown.size > openCount) pruneSoon();
    if (!shown.size) {
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
    // Newest class first; in a class, its first order, then the legs in the order they were placed.
    const groups = new Map();
    for (const o of shown.values()) {
      const root = shown.has(rootOf(o)) ? rootOf(o) : o.id;
      if (!groups.has(root)) groups.set(root, []);
      groups.get(root).push(o);
    }
    const rows = [];
    for (const root of [...groups.keys()].sort((a, b) => b - a)) {
      const members = groups.get(root).sort((a, b) => (a.id === root ? -1 : b.id === root ? 1 : a.id - b.id));
      for (const o of members) rows.push(o.id === editingId && isOpen(o) ? editRow(o, drafts) : orderRow(o, o.id !== root));
    }
    body.replaceChildren(...rows);
  }

  // What an order is in its class: the entry of a bracket or OTO, an OCO pair's first order (its take-profit), a leg.
  function roleOf(o) {
    if (!inClass(o)) return null;
    if (o.parent_id) return o.type === "limit" ? "take-profit" : "stop-loss";
    return o.order_class === "oco" ? "OCO take-profit" : `${CLASS_NAME[o.order_class]} entry`;
  }

  function trailText(o, d) {
    if (o.type !== "trailing_stop") return null;
    const trail = o.trail_percent ? `${fmt.trimZeros(o.trail_percent)}%` : fmt.fixed(o.trail_price, d);
    const mark = o.hwm ? ` · ${o.side === "sell" ? "high" : "low"} ${fmt.fixed(o.hwm, d)}` : "";
    return `trail ${trail}${mark}`;
  }

  function statusText(o) {
    if (o.status === "canceled" && o.reason === "oco") return "canceled (OCO)";
    return fmt.label(o.status);
  }

  function orderRow(o, isLeg) {
    const d = fmt.decimalsOf((instruments[o.symbol] || {}).tick_size || "0.01");
    const role = roleOf(o);
    const trail = trailText(o, d);
    const open = isOpen(o);
    const held = o.status === "held";
    const classes = [isLeg ? "leg" : "", inClass(o) ? "in-class" : "", open ? "" : "closed", held ? "held" : ""].filter(Boolean).join(" ");
    const classNote = inClass(o) ? ` (cancels its ${CLASS_NAME[o.order_class]} class)` : "";
    return el("tr", { id: `order-${o.id}`, class: classes, dataset: { id: o.id, status: o.status, parentId: o.parent_id || "" } },
      el("td", {}, isLeg ? el("span", { class: "leg-mark", "aria-hidden": "true" }, "↳ ") : null, el("strong", {}, o.symbol),
        el("span", { class: "sub muted" }, `#${o.id}`)),
      el("td", { class: o.side }, o.side === "buy" ? "Buy" : "Sell"),
      el("td", { class: "type-cell" }, fmt.label(o.type),
        role ? el("span", { class: `role${isLeg ? " leg-role" : ""}` }, role) : null,
        trail ? el("span", { class: "sub muted", dataset: { field: "trail" } }, trail) : null),
      // A notional order shows the amount asked for beside the quantity it became.
      el("td", { class: "r num" }, o.notional ? `${fmt.qty(o.qty)} ($${fmt.money(o.notional)})` : fmt.qty(o.qty)),
      el("td", { class: "r num" }, fmt.qty(o.cum_qty)),
      el("td", { class: "r num" }, o.limit_price ? fmt.fixed(o.limit_price, d) : "—"),
      el("td", { class: "r num", dataset: { field: "stop" } }, o.stop_price ? fmt.fixed(o.stop_price, d) : "—"),
      el("td", {}, o.time_in_force.toUpperCase()),
      el("td", { class: "status-cell" }, el("span", { class: `status${held ? " status-held" : ""}` }, statusText(o)),
        held ? el("span", { class: "sub muted" }, " — sized by the entry's fills") : null),
      el("td", {}, open ? el("div", { class: "actions" },
        // A held leg waits for the entry's fills (the server refuses a change); a market order cannot be changed.
        held || o.type === "market" ? null : el("button", { type: "button", class: "btn-sm btn-ghost", "aria-label": `Modify order ${o.id}`,
          onclick: () => { renderOrders(o.id); $(`#order-${o.id} input`)?.focus(); } }, "Modify"),
        el("button", { type: "button", class: "btn-sm btn-danger", "aria-label": `Cancel order ${o.id}${classNote}`,
          title: classNote ? `Cancels every open order of this ${CLASS_NAME[o.order_class]}` : null,
          onclick: (e) => cancelOrder(o.id, e.currentTarget) }, "Cancel")) : null));
  }

  function editRow(o, drafts) {
    const input = (name, value, labelText) => el("input", { name, type: "number", step: "any", min: "0",
      inputmode: "decimal", value: drafts[name] ?? fmt.trimZeros(value), "aria-label": `${labelText} for order ${o.id}` });
    const save = (e) => {
      e.preventDefault();
      modifyOrder(o.id, e.currentTarget.closest("tr"));
    };
    // The quantity of an exit belongs to its class; a trailing stop's stop moves by itself (its trail is changed).
    const classQty = inClass(o) && o.side === "sell";
    const trailing = o.type === "trailing_stop";
    const trailName = o.trail_percent ? "trail_percent" : "trail_price";
    return el("tr", { id: `order-${o.id}`, class: `editing${o.parent_id ? " leg" : ""}`, dataset: { id: o.id } },
      el("td", {}, el("strong", {}, o.symbol), el("span", { class: "muted small" }, ` #${o.id}`)),
      el("td", { class: o.side }, o.side === "buy" ? "Buy" : "Sell"),
      el("td", {}, fmt.label(o.type), trailing
        ? el("span", { class: "sub" }, input(trailName, o[trailName], trailName === "trail_percent" ? "Trail percent" : "Trail amount"))
        : null),
      el("td", { class: "r" }, classQty ? el("span", { class: "num" }, fmt.qty(o.qty)) : input("qty", o.qty, "New total quantity")),
      el("td", { class: "r num" }, fmt.qty(o.cum_qty)),
      el("td", { class: "r" }, o.limit_price !== null ? input("limit_price", o.limit_price, "Limit price") : "—"),
      el("td", { class: "r" }, o.stop_price !== null && !trailing ? input("stop_price", o.stop_price, "Stop price")
        : o.stop_price !== null ? el("span", { class: "num" }, o.stop_price) : "—"),
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
  const VISIBLE = ["status", "qty", "cum_qty", "leaves_qty", "limit_price", "stop_price", "time_in_force", "trail_price",
    "trail_percent"];
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
  const REASON_TEXT = { oco: "OCO", parent_fill: "entry filled" };

  function reportItem(r, live) {
    const d = fmt.decimalsOf((instruments[r.symbol] || {}).tick_size || "0.01");
    const verb = r.side === "buy" ? "Bought" : "Sold";
    const qty = r.order ? r.order.qty : null;
    const what = r.exec_type === "trade"
      ? `${verb} ${fmt.qty(r.last_qty)} ${r.symbol} @ ${fmt.fixed(r.last_px, d)}`
      // A class's exit resized: grown by its entry's fill, or reduced by its OCO sibling's.
      : r.exec_type === "replaced" && r.reason === "parent_fill"
        ? `${r.side === "buy" ? "Buy" : "Sell"} ${r.symbol} #${r.order_id} exit sized${qty ? ` to ${fmt.qty(qty)}` : ""} by the entry's fill`
        : r.exec_type === "replaced" && r.reason === "oco"
          ? `${r.side === "buy" ? "Buy" : "Sell"} ${r.symbol} #${r.order_id} reduced${qty ? ` to ${fmt.qty(qty)}` : ""} with its OCO sibling's fill`
          : `${r.side === "buy" ? "Buy" : "Sell"} ${r.symbol} #${r.order_id} ${EXEC_TEXT[r.exec_type] || fmt.label(r.exec_type)}${r.reason ? ` (${REASON_TEXT[r.reason] || fmt.label(r.reason)})` : ""}`;
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
