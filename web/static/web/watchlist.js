// The trade page's watchlist panel: the trader's first watchlist (made on the first symbol added) with each symbol's
// last price and change since the previous close; add, remove, and click a symbol to trade it.
"use strict";

(() => {
  const { $, api, el, fmt, showBanner, hideBanner } = BX;
  const panel = $("#watchlist");
  if (!panel) return;

  const LIST_NAME = "Watchlist";
  const REFRESH_MS = 10000;
  const error = $("#watchlist-error");
  const picker = $("#watchlist-symbol");
  let watchlist = null; // {id, name, symbols}
  let instruments = {}; // symbol -> market/symbols row (last_price, previous_close, tick_size)

  const current = () => (BX.tradePage ? BX.tradePage.symbol() : null);

  function change(i) {
    const last = Number(i.last_price);
    const previous = Number(i.previous_close);
    if (!i.last_price || !i.previous_close || !(previous > 0)) return null;
    return { amount: last - previous, pct: (last - previous) / previous };
  }

  function render() {
    const symbols = watchlist ? watchlist.symbols : [];
    $("#watchlist-name").textContent = watchlist ? watchlist.name : "";
    const body = $("#watchlist-body");
    body.replaceChildren(...(symbols.length ? symbols.map((symbol) => {
      const i = instruments[symbol] || {};
      const d = fmt.decimalsOf(i.tick_size || "0.01");
      const moved = change(i);
      const today = moved === null ? "—"
        : `${moved.amount > 0 ? "+" : ""}${fmt.fixed(moved.amount, d)} (${moved.pct > 0 ? "+" : ""}${(moved.pct * 100).toFixed(2)}%)`;
      return el("tr", { dataset: { symbol }, class: symbol === current() ? "selected" : "" },
        el("td", {}, el("button", { type: "button", class: "link", "aria-label": `Trade ${symbol}`,
          onclick: () => BX.tradePage && BX.tradePage.selectSymbol(symbol) }, symbol)),
        el("td", { class: "r num", dataset: { field: "last" } }, i.last_price ? fmt.fixed(i.last_price, d) : "—"),
        el("td", { class: `r num ${moved === null ? "" : fmt.signClass(moved.amount)}`, dataset: { field: "change" } }, today),
        el("td", { class: "r" }, el("button", { type: "button", class: "btn-sm btn-ghost", "aria-label": `Remove ${symbol} from the watchlist`,
          onclick: (e) => remove(symbol, e.currentTarget) }, "×")));
    }) : [el("tr", { class: "empty" }, el("td", { colspan: 4, class: "muted" }, "No symbols watched yet."))]));
    const choices = Object.keys(instruments).filter((s) => !symbols.includes(s)).sort();
    const keep = choices.includes(picker.value) ? picker.value : (choices.includes(current()) ? current() : choices[0]);
    picker.replaceChildren(...choices.map((s) => el("option", { value: s }, s)));
    if (keep) picker.value = keep;
    picker.disabled = !choices.length;
    panel.querySelector("#watchlist-add button").disabled = !choices.length;
  }

  function fail(err, what) {
    showBanner(error, "error", `${what}: ${err.message}`);
  }

  async function loadPrices() {
    try {
      const rows = await api("market/symbols");
      instruments = Object.fromEntries(rows.map((i) => [i.symbol, i]));
      render();
    } catch (err) {
      console.warn("watchlist prices not loaded", err);
    }
  }

  async function loadWatchlist() {
    try {
      const page = await api("watchlists?limit=1");
      watchlist = page.results[0] || null;
      render();
    } catch (err) {
      fail(err, "The watchlist could not be loaded");
    }
  }

  async function add(symbol) {
    hideBanner(error);
    try {
      watchlist = watchlist
        ? await api(`watchlists/${watchlist.id}/symbols`, { method: "POST", body: { symbol } })
        : await api("watchlists", { method: "POST", body: { name: LIST_NAME, symbols: [symbol] } });
      render();
    } catch (err) {
      fail(err, `${symbol} was not added`);
      loadWatchlist();
    }
  }

  async function remove(symbol, button) {
    if (!watchlist) return;
    hideBanner(error);
    button.disabled = true;
    try {
      watchlist = await api(`watchlists/${watchlist.id}/symbols/${encodeURIComponent(symbol)}`, { method: "DELETE" });
      render();
    } catch (err) {
      button.disabled = false;
      fail(err, `${symbol} was not removed`);
      loadWatchlist();
    }
  }

  $("#watchlist-add").addEventListener("submit", (e) => {
    e.preventDefault();
    if (picker.value) add(picker.value);
  });
  document.addEventListener("bx:symbol", render);
  setInterval(() => { if (!document.hidden) loadPrices(); }, REFRESH_MS);
  loadPrices();
  loadWatchlist();
})();
