// PNG charts for the report: SVG written here, rasterized by @resvg/resvg-js
// (a Rust renderer shipped as a prebuilt binary inside its npm packages, no
// system libraries). Owns: chart layout (bars, CDF lines, load sweeps), policy
// colours. Must not: compute statistics or decide what to plot.
//
// Text uses the system's sans-serif fonts (DejaVu where present); on a machine
// without fonts the charts still render, without labels.

import { Resvg } from "@resvg/resvg-js";

const COLORS: Record<string, string> = {
  random: "#9e9e9e",
  "round-robin": "#795548",
  "least-request": "#ff9800",
  chwbl: "#9c27b0",
  "gaie-approx": "#2196f3",
  "prefix-router": "#e53935",
  oracle: "#2e7d32",
};
const FALLBACK = ["#00897b", "#5c6bc0", "#c0ca33", "#8d6e63"];

export function policyColor(name: string, i = 0): string {
  return COLORS[name] ?? FALLBACK[i % FALLBACK.length];
}

const FONT = `font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif"`;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(v: number): string {
  if (v >= 10000) return `${(v / 1000).toFixed(0)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  if (v >= 10 || Number.isInteger(v)) return v.toFixed(0);
  return v.toPrecision(2);
}

export function toPng(svg: string): Buffer {
  const r = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "white" });
  return r.render().asPng();
}

/** Horizontal bars, one per label, values in [0, max]. */
export function barChart(title: string, rows: { label: string; value: number; note?: string }[], opts: { max?: number; unit?: string } = {}): string {
  const W = 760;
  const rowH = 34;
  const left = 150;
  const right = 90;
  const top = 48;
  const H = top + rows.length * rowH + 40;
  const max = opts.max ?? Math.max(...rows.map((r) => r.value), 1e-9);
  const x = (v: number): number => left + ((W - left - right) * v) / max;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="17" ${FONT}>${esc(title)}</text>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const v = (max * t) / 4;
    parts.push(`<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${top + rows.length * rowH}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${x(v)}" y="${top + rows.length * rowH + 18}" text-anchor="middle" font-size="12" ${FONT}>${fmt(v)}${opts.unit ?? ""}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${left - 8}" y="${y + rowH / 2 + 5}" text-anchor="end" font-size="14" ${FONT}>${esc(r.label)}</text>`);
    parts.push(`<rect x="${left}" y="${y + 5}" width="${Math.max(0, x(r.value) - left)}" height="${rowH - 10}" fill="${policyColor(r.label, i)}"/>`);
    parts.push(`<text x="${x(r.value) + 6}" y="${y + rowH / 2 + 5}" font-size="13" ${FONT}>${esc(r.note ?? fmt(r.value))}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

export interface Series {
  label: string;
  points: [number, number][];
}

/** Round to the 1-2-5 sequence, down (Math.floor) or up (Math.ceil). */
function niceLog(v: number, dir: (x: number) => number): number {
  const steps = [1, 2, 5, 10];
  const e = Math.floor(Math.log10(v));
  const m = v / 10 ** e;
  const pick = dir === Math.floor ? [...steps].reverse().find((s) => s <= m + 1e-9)! : steps.find((s) => s >= m - 1e-9)!;
  return pick * 10 ** e;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

/** Lines over a shared x axis (log or linear), with a legend. */
export function lineChart(
  title: string,
  series: Series[],
  opts: { xLabel: string; yLabel: string; logX?: boolean; logY?: boolean; yMax?: number; yMin?: number },
): string {
  const W = 860;
  const H = 500;
  const left = 78;
  const right = 190;
  const top = 48;
  const bottom = 60;
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).filter((v) => !opts.logX || v > 0);
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v) && (!opts.logY || v > 0));
  let xLo = Math.min(...xs);
  let xHi = Math.max(...xs);
  if (xLo === xHi) xHi = xLo + 1;
  let yLo = opts.yMin ?? (opts.logY ? Math.min(...ys) : 0);
  let yHi = opts.yMax ?? Math.max(...ys);
  if (yLo === yHi) yHi = yLo + 1;
  if (opts.logX) {
    xLo = niceLog(xLo, Math.floor);
    xHi = niceLog(xHi, Math.ceil);
  }
  if (opts.logY) {
    yLo = niceLog(yLo, Math.floor);
    yHi = niceLog(yHi, Math.ceil);
  }
  const tx = (v: number): number => {
    const f = opts.logX ? (Math.log10(v) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo)) : (v - xLo) / (xHi - xLo);
    return left + f * (W - left - right);
  };
  const ty = (v: number): number => {
    const f = opts.logY ? (Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo)) : (v - yLo) / (yHi - yLo);
    return H - bottom - f * (H - top - bottom);
  };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(W - right + left) / 2}" y="28" text-anchor="middle" font-size="17" ${FONT}>${esc(title)}</text>`,
  ];
  const xt = opts.logX ? logTicks(xLo, xHi) : Array.from({ length: 6 }, (_, i) => xLo + ((xHi - xLo) * i) / 5);
  const yt = opts.logY ? logTicks(yLo, yHi) : Array.from({ length: 6 }, (_, i) => yLo + ((yHi - yLo) * i) / 5);
  for (const v of xt) {
    parts.push(`<line x1="${tx(v)}" y1="${top}" x2="${tx(v)}" y2="${H - bottom}" stroke="#eeeeee"/>`);
    parts.push(`<text x="${tx(v)}" y="${H - bottom + 18}" text-anchor="middle" font-size="12" ${FONT}>${fmt(v)}</text>`);
  }
  for (const v of yt) {
    parts.push(`<line x1="${left}" y1="${ty(v)}" x2="${W - right}" y2="${ty(v)}" stroke="#eeeeee"/>`);
    parts.push(`<text x="${left - 6}" y="${ty(v) + 4}" text-anchor="end" font-size="12" ${FONT}>${fmt(v)}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${W - left - right}" height="${H - top - bottom}" fill="none" stroke="#616161"/>`);
  parts.push(`<text x="${(W - right + left) / 2}" y="${H - 16}" text-anchor="middle" font-size="13" ${FONT}>${esc(opts.xLabel)}</text>`);
  parts.push(`<text x="18" y="${(H - bottom + top) / 2}" text-anchor="middle" font-size="13" ${FONT} transform="rotate(-90 18 ${(H - bottom + top) / 2})">${esc(opts.yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && (!opts.logX || p[0] > 0) && (!opts.logY || p[1] > 0));
    if (pts.length === 0) return;
    const color = policyColor(s.label, i);
    const d = pts.map((p, j) => `${j === 0 ? "M" : "L"}${tx(p[0]).toFixed(1)},${ty(p[1]).toFixed(1)}`).join(" ");
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2.2"/>`);
    if (pts.length <= 12) for (const p of pts) parts.push(`<circle cx="${tx(p[0])}" cy="${ty(p[1])}" r="3.5" fill="${color}"/>`);
    const ly = top + 10 + i * 22;
    parts.push(`<line x1="${W - right + 14}" y1="${ly}" x2="${W - right + 40}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${W - right + 46}" y="${ly + 4}" font-size="13" ${FONT}>${esc(s.label)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Empirical CDF points of sorted values, thinned to at most `max` points. */
export function cdfPoints(sorted: ArrayLike<number>, max = 400): [number, number][] {
  const n = sorted.length;
  const out: [number, number][] = [];
  if (n === 0) return out;
  const step = Math.max(1, Math.floor(n / max));
  for (let i = 0; i < n; i += step) out.push([Math.max(sorted[i], 0.1), (i + 1) / n]);
  out.push([Math.max(sorted[n - 1], 0.1), 1]);
  return out;
}
