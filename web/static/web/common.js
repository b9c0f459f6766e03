// Shared pieces of the trader pages: API calls with the session's CSRF token, formatting, the private order stream.
"use strict";

window.BX = (() => {
  const $ = (selector, root = document) => root.querySelector(selector);

  function cookie(name) {
    const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  // crypto.randomUUID needs a secure context; getRandomValues works everywhere.
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `Request failed (${status}).`);
      this.status = status;
      this.code = (body && body.code) || "error";
      this.details = (body && body.details) || {};
    }
  }

  // Calls the native API with the browser's MFA-verified session. Resolves with the JSON body; rejects with ApiError
  // ({status, code, message, details}); a network failure becomes status 0 so callers show one kind of error.
  async function api(path, { method = "GET", body, headers = {} } = {}) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
    if (method !== "GET") init.headers["X-CSRFToken"] = cookie("csrftoken");
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path.startsWith("/") ? path : `/api/v1/${path}`, init);
    } catch (err) {
      throw new ApiError(0, { code: "network_error", message: "Cannot reach BrokerX. Check your connection and try again." });
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (err) { data = null; }
    }
    if (!response.ok) {
      if (response.status === 401 || (data && data.code === "not_authenticated")) {
        throw new ApiError(response.status, { code: "not_authenticated", message: "Your session has ended. Sign in again." });
      }
      throw new ApiError(response.status, data || { message: `Request failed (${response.status}).` });
    }
    return data;
  }

  // Every page of a LimitOffset/cursor-paginated list (follows `next`), capped so a huge history cannot hang the page.
  async function apiAll(path, maxPages = 20) {
    let data = await api(path);
    if (Array.isArray(data)) return data;
    const rows = [...data.results];
    for (let i = 1; data.next && i < maxPages; i++) {
      const next = new URL(data.next, location.origin);
      data = await api(next.pathname + next.search);
      rows.push(...data.results);
    }
    return rows;
  }

  // --- formatting: the API sends decimals as strings; they are shown as given, trimmed, never through float maths
  // except for the display-only chart and depth bars.
  function trimZeros(s) {
    if (s === null || s === undefined || s === "") return "";
    s = String(s);
    return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }
  function decimalsOf(step) {
    const t = trimZeros(step);
    return t.includes(".") ? t.split(".")[1].length : 0;
  }
  function fixed(s, places) {
    if (s === null || s === undefined || s === "") return "—";
    const n = Number(s);
    if (!Number.isFinite(n)) return String(s);
    return n.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
  }
  const money = (s) => fixed(s, 2);
  const qty = (s) => (s === null || s === undefined || s === "" ? "—" : Number(s).toLocaleString("en-US", { maximumFractionDigits: 4 }));
  const signed = (s) => {
    const n = Number(s);
    return (n > 0 ? "+" : "") + money(s);
  };
  const signClass = (s) => (Number(s) > 0 ? "pos" : Number(s) < 0 ? "neg" : "");
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "");
  const dateTime = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "");
  const label = (s) => (s ? String(s).replace(/_/g, " ") : "");

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function showBanner(node, kind, message, action) {
    if (!node) return;
    node.className = `banner ${kind}`;
    node.replaceChildren(message);
    if (action) node.append(action);
    node.hidden = false;
  }
  function hideBanner(node) {
    if (node) { node.hidden = true; node.replaceChildren(); }
  }

  function toast(message, kind = "") {
    const box = $("#toasts");
    if (!box) return;
    const item = el("div", { class: `toast ${kind}` }, message);
    box.append(item);
    setTimeout(() => item.remove(), 6000);
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function setConn(node, state, text) {
    if (!node) return;
    node.dataset.state = state;
    const labelNode = node.querySelector(".label");
    if (labelNode) labelNode.textContent = text;
  }

  function wsUrl(path) {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
  }

  // A WebSocket that reconnects with capped back-off; `onOpen` runs on every (re)connection.
  function reconnecting(path, { onOpen, onMessage, onState }) {
    let socket = null;
    let attempt = 0;
    let stopped = false;
    const connect = () => {
      onState && onState("connecting");
      socket = new WebSocket(wsUrl(path));
      socket.addEventListener("open", () => {
        attempt = 0;
        onState && onState("live");
        onOpen && onOpen(socket);
      });
      socket.addEventListener("message", (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (err) { return; }
        onMessage(message, socket);
      });
      socket.addEventListener("close", (event) => {
        if (stopped) return;
        onState && onState("down", event.code);
        if (event.code === 4401) return; // signed out: reconnecting would not help
        attempt += 1;
        setTimeout(connect, Math.min(15000, 500 * 2 ** Math.min(attempt, 5)) + Math.random() * 300);
      });
    };
    connect();
    return {
      send: (obj) => socket && socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(obj)),
      close: () => { stopped = true; socket && socket.close(); },
    };
  }

  // The private stream of execution reports (/ws/orders/). Reports are numbered 1, 2, 3... per user: on a jump, or
  // after a reconnect whose hello says more happened, the missing ones are fetched from /api/v1/fills?after=<seq>.
  // `onReport(report, {live})` sees each report once, in order; `live` is false for the history loaded at start.
  function orderStream({ onReport, onState, history = 50 }) {
    let lastSeq = null; // highest seq handed to onReport; null until the first hello
    let chain = Promise.resolve(); // serialises handling so catch-up and live messages stay in order

    const deliver = (report, live) => {
      if (lastSeq !== null && report.seq <= lastSeq) return;
      lastSeq = report.seq;
      onReport(report, { live });
    };
    const catchUp = async (after, live) => {
      const rows = await apiAll(`fills?after=${after}&limit=200`);
      if (lastSeq === null) lastSeq = after;
      for (const row of rows) deliver({ ...row, timestamp: row.created_at }, live);
    };
    const enqueue = (task) => {
      chain = chain.then(task).catch((err) => console.warn("order stream:", err));
    };

    return reconnecting("/ws/orders/", {
      onState,
      onMessage: (message) => {
        if (message.type === "hello") {
          enqueue(async () => {
            if (lastSeq === null) await catchUp(Math.max(0, message.last_seq - history), false);
            else if (message.last_seq > lastSeq) await catchUp(lastSeq, true);
          });
        } else if (message.type === "execution_report") {
          enqueue(async () => {
            if (lastSeq === null) return; // the hello's catch-up covers it
            if (message.seq > lastSeq + 1) await catchUp(lastSeq, true);
            deliver(message, true);
          });
        }
      },
    });
  }

  return { $, api, apiAll, ApiError, uuid, cookie, el, showBanner, hideBanner, toast, debounce, setConn, reconnecting,
    orderStream, fmt: { trimZeros, decimalsOf, fixed, money, qty, signed, signClass, time, dateTime, label } };
})();
