// The portfolio page: balances and positions, deposits and withdrawals (idempotent), ledger activity, notifications.
"use strict";

(() => {
  const { $, api, el, fmt, showBanner, toast, debounce } = BX;
  const root = $("#portfolio");
  if (!root) return;
  const banner = $("#banner");

  async function loadPortfolio() {
    try {
      const pf = await api("portfolio");
      for (const node of root.querySelectorAll("[data-pf]")) {
        const key = node.dataset.pf;
        const pnl = key.endsWith("pnl");
        node.textContent = pnl ? fmt.signed(pf[key]) : `$${fmt.money(pf[key])}`;
        node.className = `num ${pnl ? fmt.signClass(pf[key]) : ""}`;
      }
      const rows = pf.positions.filter((p) => Number(p.qty) !== 0 || Number(p.realized_pnl) !== 0);
      $("#positions-body").replaceChildren(...(rows.length ? rows.map((p) => el("tr", { dataset: { symbol: p.symbol } },
        el("td", {}, el("a", { href: `/trade/?symbol=${encodeURIComponent(p.symbol)}` }, p.symbol)),
        el("td", { class: "r num" }, fmt.qty(p.qty)),
        el("td", { class: "r num" }, fmt.qty(p.qty_reserved)),
        el("td", { class: "r num" }, fmt.money(p.avg_cost)),
        el("td", { class: "r num", title: p.market_price_source === "market" ? "last trade" : "no trade yet: average cost" },
          fmt.money(p.market_price)),
        el("td", { class: "r num" }, fmt.money(p.market_value)),
        el("td", { class: `r num ${fmt.signClass(p.unrealized_pnl)}` }, fmt.signed(p.unrealized_pnl)),
        el("td", { class: `r num ${fmt.signClass(p.realized_pnl)}` }, fmt.signed(p.realized_pnl))))
        : [el("tr", { class: "empty" }, el("td", { colspan: 8, class: "muted" }, "No positions."))]));
    } catch (err) {
      showBanner(banner, "error", `Your portfolio could not be loaded: ${err.message}`);
    }
  }

  // --- deposits and withdrawals ---------------------------------------------------------------------

  let pollUntil = Date.now() + 60000; // pending deposits are watched for a minute after the page opens or a submit
  async function loadTransfers() {
    try {
      const [deposits, withdrawals] = await Promise.all([api("deposits?limit=10"), api("withdrawals?limit=10")]);
      const rows = [
        ...deposits.results.map((d) => ({ ...d, kind: "Deposit" })),
        ...withdrawals.results.map((w) => ({ ...w, kind: "Withdrawal" })),
      ].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at)).slice(0, 10);
      $("#transfers-body").replaceChildren(...(rows.length ? rows.map((t) => el("tr", {},
        el("td", { class: "muted" }, fmt.dateTime(t.created_at)),
        el("td", {}, t.kind),
        el("td", { class: "r num" }, `$${fmt.money(t.amount)}`),
        el("td", {}, el("span", { class: `status ${t.status === "failed" ? "neg" : t.status === "settled" ? "pos" : ""}`,
          title: t.failure_reason || "" }, fmt.label(t.status)))))
        : [el("tr", { class: "empty" }, el("td", { colspan: 4, class: "muted" }, "None yet."))]));
      // A pending deposit settles a few seconds later: watch it for a while.
      if (deposits.results.some((d) => d.status === "pending") && Date.now() < pollUntil) {
        setTimeout(() => { loadTransfers(); loadPortfolio(); loadActivities(); loadEquity(); }, 2000);
      }
    } catch (err) {
      showBanner(banner, "error", `Transfers could not be loaded: ${err.message}`);
    }
  }

  // One Idempotency-Key per intended transfer: a retry of the same amount (after a lost answer) reuses it, so the
  // money moves once; a different amount is a new transfer with a new key.
  function transferForm(formId, path, noun) {
    const form = $(formId);
    const input = form.querySelector("input[name=amount]");
    const error = form.querySelector(".field-error");
    const button = form.querySelector("button");
    let pending = null; // {amount, key}
    const fail = (message) => {
      input.setAttribute("aria-invalid", "true");
      error.textContent = message;
      error.hidden = false;
    };
    input.addEventListener("input", () => {
      input.removeAttribute("aria-invalid");
      error.hidden = true;
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const amount = input.value.trim();
      if (!amount) return fail("Enter an amount.");
      if (!(Number(amount) > 0)) return fail("The amount must be more than 0.");
      if (!/^\d+(\.\d{1,2})?$/.test(amount)) return fail("Use dollars and cents, e.g. 250.00.");
      if (!pending || pending.amount !== amount) pending = { amount, key: BX.uuid() };
      button.disabled = true;
      try {
        const result = await api(path, { method: "POST", body: { amount }, headers: { "Idempotency-Key": pending.key } });
        pending = null;
        input.value = "";
        toast(`${noun} of $${fmt.money(result.amount)}: ${fmt.label(result.status)}`);
        pollUntil = Date.now() + 60000;
        loadTransfers();
        loadPortfolio();
        loadActivities();
        loadEquity();
      } catch (err) {
        // In flight elsewhere or unanswered: keep the key so the retry is the same request.
        if (err.status !== 0 && err.status < 500 && err.code !== "idempotency_in_flight") pending = null;
        const details = err.details && err.details.amount;
        fail(details ? [].concat(details).join(" ") : err.message);
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- ledger activity ------------------------------------------------------------------------------

  let nextActivities = null;
  function activityRow(a) {
    return el("tr", {},
      el("td", { class: "muted" }, fmt.dateTime(a.created_at)),
      el("td", {}, fmt.label(a.type)),
      el("td", { class: "muted" }, fmt.label(a.account)),
      el("td", {}, a.asset),
      el("td", { class: `r num ${fmt.signClass(a.amount)}` }, a.asset === "USD" ? fmt.signed(a.amount) : fmt.qty(a.amount)),
      el("td", { class: "muted small" }, a.memo || a.reference));
  }
  async function loadActivities(more = false) {
    try {
      const data = await api(more && nextActivities ? nextActivities : "activities?limit=25");
      nextActivities = data.next ? new URL(data.next, location.origin).pathname + new URL(data.next, location.origin).search : null;
      const body = $("#activities-body");
      const rows = data.results.map(activityRow);
      if (more) body.append(...rows);
      else body.replaceChildren(...(rows.length ? rows
        : [el("tr", { class: "empty" }, el("td", { colspan: 6, class: "muted" }, "No activity yet."))]));
      $("#activities-more").hidden = !nextActivities;
    } catch (err) {
      showBanner(banner, "error", `Activity could not be loaded: ${err.message}`);
    }
  }
  $("#activities-more").addEventListener("click", () => loadActivities(true));

  // --- equity history -------------------------------------------------------------------------------

  const equityChart = new EquityChart($("#equity-chart"), { empty: $("#equity-empty") });
  let equityPeriod = "1M";
  async function loadEquity() {
    const period = equityPeriod;
    try {
      const data = await api(`portfolio/history?period=${encodeURIComponent(period)}`);
      if (period !== equityPeriod) return;
      equityChart.setHistory(data);
      const last = data.equity[data.equity.length - 1];
      const pl = data.profit_loss[data.profit_loss.length - 1];
      const pct = data.profit_loss_pct[data.profit_loss_pct.length - 1];
      const summary = $("#equity-summary");
      summary.textContent = last === undefined ? ""
        : `$${fmt.money(last)} · ${fmt.signed(pl)}${pct === null || pct === undefined ? "" : ` (${(pct * 100).toFixed(2)}%)`}`;
      summary.className = `small num ${fmt.signClass(pl)}`;
      $("#equity-chart").setAttribute("aria-label", `Equity over ${period === "all" ? "the account's life" : period}: ${summary.textContent}`);
    } catch (err) {
      showBanner(banner, "error", `Equity history could not be loaded: ${err.message}`);
    }
  }
  for (const button of document.querySelectorAll("#equity-periods [data-period]")) {
    button.addEventListener("click", () => {
      equityPeriod = button.dataset.period;
      for (const b of document.querySelectorAll("#equity-periods [data-period]")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      loadEquity();
    });
  }

  // --- notifications --------------------------------------------------------------------------------

  async function loadNotifications() {
    try {
      const data = await api("notifications?limit=20");
      const badge = $("#unread");
      badge.textContent = data.unread;
      badge.setAttribute("aria-label", `${data.unread} unread`);
      badge.classList.toggle("zero", !data.unread);
      $("#mark-read").disabled = !data.unread;
      $("#notes").replaceChildren(...(data.results.length ? data.results.map((n) => el("li", { class: n.read_at ? "" : "unread" },
        el("span", { class: "title" }, n.title), " ", el("span", { class: "muted small" }, fmt.dateTime(n.created_at)),
        n.body ? el("div", { class: "body" }, n.body) : null))
        : [el("li", { class: "muted" }, "No notifications.")]));
    } catch (err) {
      showBanner(banner, "error", `Notifications could not be loaded: ${err.message}`);
    }
  }
  $("#mark-read").addEventListener("click", async () => {
    try {
      await api("notifications/read", { method: "POST", body: {} });
      loadNotifications();
    } catch (err) {
      showBanner(banner, "error", err.message);
    }
  });

  // Fills change cash, positions and the ledger: refresh when one arrives.
  const refreshAll = debounce(() => { loadPortfolio(); loadActivities(); loadNotifications(); loadEquity(); }, 200);
  BX.orderStream({ history: 0, onReport: (r, { live }) => { if (live) refreshAll(); } });

  if (root.dataset.canTrade !== "1") {
    showBanner(banner, "info", "Verify your e-mail address (Security settings) before you deposit or trade.");
  }
  transferForm("#deposit-form", "deposits", "Deposit");
  transferForm("#withdraw-form", "withdrawals", "Withdrawal");
  loadPortfolio();
  loadTransfers();
  loadActivities();
  loadNotifications();
  loadEquity();
})();
