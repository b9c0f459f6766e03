// A line chart of equity over time on a <canvas>, filled under the line, coloured by the result over the window;
// the canvas' data-points says how many points the last drawing shows.
"use strict";

window.EquityChart = class EquityChart {
  constructor(canvas, { empty } = {}) {
    this.canvas = canvas;
    this.empty = empty;
    this.points = []; // [{t (ms), equity}]
    this.daily = false;
    const css = getComputedStyle(document.documentElement);
    this.colors = {
      up: css.getPropertyValue("--buy").trim() || "#2ea043",
      down: css.getPropertyValue("--sell").trim() || "#f85149",
      text: css.getPropertyValue("--muted").trim() || "#8b98a5",
      grid: "rgba(139,152,165,0.12)",
    };
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  // history: the API's {timestamp: [epoch s], equity: [number], timeframe}.
  setHistory(history) {
    this.points = history.timestamp.map((t, i) => ({ t: t * 1000, equity: history.equity[i] }))
      .filter((p) => p.equity !== null && p.equity !== undefined);
    this.daily = history.timeframe === "1D";
    this.draw();
  }

  draw() {
    const dpr = window.devicePixelRatio || 1;
    const { canvas } = this;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const pts = this.points;
    canvas.dataset.points = pts.length;
    if (this.empty) this.empty.hidden = pts.length > 0;
    if (!pts.length) return;

    const axisW = 84;
    const axisH = 22;
    const plot = { x: 6, y: 8, w: Math.max(10, w - axisW - 6), h: Math.max(10, h - axisH - 8) };
    let lo = Math.min(...pts.map((p) => p.equity));
    let hi = Math.max(...pts.map((p) => p.equity));
    if (hi - lo < Math.max(1, hi * 0.002)) { const mid = (hi + lo) / 2; const half = Math.max(1, Math.abs(mid) * 0.01); lo = mid - half; hi = mid + half; }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const t0 = pts[0].t;
    const t1 = Math.max(pts[pts.length - 1].t, t0 + 1);
    const xOf = (t) => plot.x + ((t - t0) / (t1 - t0)) * plot.w;
    const yOf = (v) => plot.y + ((hi - v) / (hi - lo)) * plot.h;

    ctx.font = "11px ui-monospace, Menlo, Consolas, monospace";
    ctx.textBaseline = "middle";
    ctx.fillStyle = this.colors.text;
    ctx.strokeStyle = this.colors.grid;
    ctx.lineWidth = 1;
    const step = niceStep((hi - lo) / 4);
    for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
      const y = Math.round(yOf(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(plot.x, y); ctx.lineTo(plot.x + plot.w, y); ctx.stroke();
      const shown = Math.abs(v) < step / 1e6 ? 0 : v; // no "-0" from float steps
      ctx.fillText(`$${shown.toLocaleString("en-US", { maximumFractionDigits: step < 1 ? 2 : 0 })}`, plot.x + plot.w + 8, y);
    }
    ctx.textAlign = "center";
    const labels = Math.max(2, Math.floor(plot.w / 110));
    for (let i = 0; i <= labels; i++) {
      const t = t0 + ((t1 - t0) * i) / labels;
      const d = new Date(t);
      const text = this.daily || t1 - t0 > 2 * 86400000
        ? d.toLocaleDateString([], { month: "short", day: "numeric" })
        : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      ctx.fillText(text, Math.min(Math.max(xOf(t), plot.x + 24), plot.x + plot.w - 24), h - axisH / 2);
    }
    ctx.textAlign = "left";

    const color = pts[pts.length - 1].equity >= pts[0].equity ? this.colors.up : this.colors.down;
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(xOf(p.t), yOf(p.equity)) : ctx.moveTo(xOf(p.t), yOf(p.equity))));
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(xOf(pts[pts.length - 1].t), plot.y + plot.h);
    ctx.lineTo(xOf(pts[0].t), plot.y + plot.h);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
};

function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
}
