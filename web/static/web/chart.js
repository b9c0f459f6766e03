// A candle chart drawn on a <canvas>: candles placed by time (empty periods stay empty), volume underneath, the last
// price marked on the price axis, and the hovered bar's OHLC in a legend. One candle per period of the timeframe
// (1 minute to 1 day); the canvas' data-candles says how many candles the last drawing shows.
"use strict";

window.CandleChart = class CandleChart {
  static TIMEFRAMES = {
    "1Min": { step: 60000, label: "1-minute" },
    "5Min": { step: 300000, label: "5-minute" },
    "15Min": { step: 900000, label: "15-minute" },
    "1Hour": { step: 3600000, label: "1-hour" },
    "1Day": { step: 86400000, label: "daily" },
  };

  constructor(canvas, { legend, empty, priceDecimals = 2, timeframe = "1Min" } = {}) {
    this.canvas = canvas;
    this.legend = legend;
    this.empty = empty;
    this.priceDecimals = priceDecimals;
    this.bars = new Map(); // start (ms) -> bar with numeric fields
    this.hover = null;
    this.slot = 10; // px per period
    const css = getComputedStyle(document.documentElement);
    this.colors = {
      up: css.getPropertyValue("--buy").trim() || "#2ea043",
      down: css.getPropertyValue("--sell").trim() || "#f85149",
      text: css.getPropertyValue("--muted").trim() || "#8b98a5",
      grid: "rgba(139,152,165,0.12)",
      accent: css.getPropertyValue("--accent").trim() || "#58a6ff",
    };
    this.scheduled = false;
    this.setTimeframe(timeframe);
    new ResizeObserver(() => this.redraw()).observe(canvas);
    canvas.addEventListener("mousemove", (e) => this.onHover(e));
    canvas.addEventListener("mouseleave", () => { this.hover = null; this.redraw(); });
    // The current period moves on even without trades.
    setInterval(() => this.redraw(), 15000);
  }

  setTimeframe(timeframe) {
    const known = CandleChart.TIMEFRAMES[timeframe] || CandleChart.TIMEFRAMES["1Min"];
    this.timeframe = timeframe;
    this.step = known.step; // ms per candle
    this.label = known.label;
    this.bars = new Map();
    this.hover = null;
    this.redraw();
  }

  static parse(bar) {
    return { start: Date.parse(bar.start), open: +bar.open, high: +bar.high, low: +bar.low, close: +bar.close,
      volume: +bar.volume, raw: bar };
  }

  setBars(bars, priceDecimals) {
    if (priceDecimals !== undefined) this.priceDecimals = priceDecimals;
    this.bars = new Map(bars.map((b) => [Date.parse(b.start), CandleChart.parse(b)]));
    this.redraw();
  }

  upsert(bar) {
    const parsed = CandleChart.parse(bar);
    this.bars.set(parsed.start, parsed);
    // Keep memory bounded on a page left open all day.
    if (this.bars.size > 1500) {
      const oldest = [...this.bars.keys()].sort((a, b) => a - b).slice(0, this.bars.size - 1500);
      oldest.forEach((k) => this.bars.delete(k));
    }
    this.redraw();
  }

  redraw() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => { this.scheduled = false; this.draw(); });
  }

  geometry() {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const axisW = 68;
    const axisH = 22;
    const plot = { x: 6, y: 8, w: Math.max(10, w - axisW - 6), h: Math.max(10, h - axisH - 8) };
    const volH = Math.round(plot.h * 0.18);
    const sorted = [...this.bars.keys()].sort((a, b) => a - b);
    const nowPeriod = Math.floor(Date.now() / this.step) * this.step; // periods align to UTC, as the server's
    const end = Math.max(nowPeriod, sorted.length ? sorted[sorted.length - 1] : 0);
    const periods = Math.max(1, Math.floor(plot.w / this.slot));
    const startT = end - (periods - 1) * this.step;
    return { w, h, axisW, axisH, plot, volH, end, startT, periods };
  }

  xOf(g, t) {
    return g.plot.x + g.plot.w - ((g.end - t) / this.step + 0.5) * this.slot;
  }

  draw() {
    const dpr = window.devicePixelRatio || 1;
    const g = this.geometry();
    const { canvas } = this;
    if (canvas.width !== Math.round(g.w * dpr) || canvas.height !== Math.round(g.h * dpr)) {
      canvas.width = Math.round(g.w * dpr);
      canvas.height = Math.round(g.h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.w, g.h);
    const visible = [...this.bars.values()].filter((b) => b.start >= g.startT && b.start <= g.end).sort((a, b) => a.start - b.start);
    canvas.dataset.candles = visible.length;
    canvas.dataset.timeframe = this.timeframe;
    if (this.empty) this.empty.hidden = this.bars.size > 0;
    ctx.font = "11px ui-monospace, Menlo, Consolas, monospace";
    ctx.textBaseline = "middle";

    const priceTop = g.plot.y;
    const priceH = g.plot.h - g.volH - 6;
    let lo = Math.min(...visible.map((b) => b.low));
    let hi = Math.max(...visible.map((b) => b.high));
    if (!visible.length) {
      const last = [...this.bars.values()].sort((a, b) => b.start - a.start)[0];
      lo = hi = last ? last.close : 100;
    }
    if (hi - lo < hi * 0.002) { const mid = (hi + lo) / 2; lo = mid * 0.997; hi = mid * 1.003; }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const yOf = (p) => priceTop + (hi - p) / (hi - lo) * priceH;

    // Price grid and axis labels at "nice" steps.
    const step = niceStep((hi - lo) / 5);
    ctx.fillStyle = this.colors.text;
    ctx.strokeStyle = this.colors.grid;
    ctx.lineWidth = 1;
    for (let p = Math.ceil(lo / step) * step; p <= hi; p += step) {
      const y = Math.round(yOf(p)) + 0.5;
      ctx.beginPath(); ctx.moveTo(g.plot.x, y); ctx.lineTo(g.plot.x + g.plot.w, y); ctx.stroke();
      ctx.fillText(p.toFixed(this.priceDecimals), g.plot.x + g.plot.w + 8, y);
    }
    // Time labels at round times, at least ~70 px apart.
    const MIN = 60000;
    const every = [5, 10, 15, 30, 60, 120, 240, 360, 720, 1440, 2880, 10080, 20160, 40320].map((m) => m * MIN)
      .find((ms) => (ms / this.step) * this.slot >= 70) || 80640 * MIN;
    ctx.textAlign = "center";
    for (let t = Math.ceil(g.startT / every) * every; t <= g.end; t += every) {
      const x = Math.round(this.xOf(g, t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, g.plot.y); ctx.lineTo(x, g.plot.y + g.plot.h); ctx.stroke();
      ctx.fillText(this.timeText(t, every >= 1440 * MIN), x, g.h - g.axisH / 2);
    }
    ctx.textAlign = "left";

    // Volume, then candles.
    const maxVol = Math.max(1, ...visible.map((b) => b.volume));
    const body = Math.max(1, Math.floor(this.slot * 0.7));
    const volBase = g.plot.y + g.plot.h;
    for (const b of visible) {
      const up = b.close >= b.open;
      const x = Math.round(this.xOf(g, b.start));
      const color = up ? this.colors.up : this.colors.down;
      ctx.globalAlpha = 0.35;
      ctx.fillStyle = color;
      const vh = Math.max(1, (b.volume / maxVol) * g.volH);
      ctx.fillRect(x - body / 2, volBase - vh, body, vh);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = color;
      ctx.beginPath(); ctx.moveTo(x + 0.5, yOf(b.high)); ctx.lineTo(x + 0.5, yOf(b.low)); ctx.stroke();
      const top = yOf(Math.max(b.open, b.close));
      const height = Math.max(1, Math.abs(yOf(b.open) - yOf(b.close)));
      ctx.fillRect(x - body / 2 + 0.5, top, body, height);
    }

    // Last price: a dashed line and a tag on the axis.
    const latest = [...this.bars.values()].sort((a, b) => b.start - a.start)[0];
    if (latest) {
      const y = Math.round(yOf(latest.close)) + 0.5;
      const color = latest.close >= latest.open ? this.colors.up : this.colors.down;
      ctx.setLineDash([3, 3]); ctx.strokeStyle = color;
      ctx.beginPath(); ctx.moveTo(g.plot.x, y); ctx.lineTo(g.plot.x + g.plot.w, y); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = color;
      ctx.fillRect(g.plot.x + g.plot.w + 2, y - 9, g.axisW - 4, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(latest.close.toFixed(this.priceDecimals), g.plot.x + g.plot.w + 8, y);
    }

    // Crosshair on the hovered period.
    if (this.hover !== null) {
      const x = Math.round(this.xOf(g, this.hover)) + 0.5;
      ctx.strokeStyle = "rgba(230,237,243,0.25)";
      ctx.beginPath(); ctx.moveTo(x, g.plot.y); ctx.lineTo(x, g.plot.y + g.plot.h); ctx.stroke();
    }
    this.updateLegend(this.hover !== null ? this.bars.get(this.hover) : latest);
  }

  timeText(t, withDate) {
    const date = new Date(t);
    if (this.step >= 86400000) return date.toLocaleDateString([], { month: "short", day: "numeric", timeZone: "UTC" });
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return withDate ? `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}` : time;
  }

  updateLegend(bar) {
    if (!this.legend) return;
    if (!bar) {
      this.legend.textContent = "";
      this.canvas.setAttribute("aria-label", `Candle chart of ${this.label} bars: no trades yet`);
      return;
    }
    const d = this.priceDecimals;
    const t = this.timeText(bar.start, this.step >= 3600000);
    this.legend.textContent = `${t}  O ${bar.open.toFixed(d)}  H ${bar.high.toFixed(d)}  L ${bar.low.toFixed(d)}  C ${bar.close.toFixed(d)}  V ${bar.volume}`;
    if (this.hover === null) this.canvas.setAttribute("aria-label", `Candle chart of ${this.label} bars; latest ${this.legend.textContent}`);
  }

  onHover(event) {
    const g = this.geometry();
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const periodsBack = Math.round((g.plot.x + g.plot.w - x) / this.slot - 0.5);
    const t = g.end - periodsBack * this.step;
    this.hover = this.bars.has(t) ? t : null;
    this.redraw();
  }
};

function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
}
