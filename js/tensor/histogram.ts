// The histogram of a whole tensor (computed in the kernel): bars, log-count option, and a click
// on a bar selects its value range (the heatmap highlights those cells).

import { el } from "../core/dom";
import { count, shortNumber } from "../core/format";
import type { Hist } from "./scale";

export const DISPLAY_BINS = 64;

/** Merge fine counts into `bins` display bins. */
export function mergeBins(counts: ArrayLike<number>, bins: number): number[] {
  const out = new Array<number>(bins).fill(0);
  if (!counts.length) return out;
  const per = counts.length / bins;
  for (let i = 0; i < counts.length; i++) out[Math.min(bins - 1, Math.floor(i / per))] += counts[i];
  return out;
}

export class HistogramView {
  readonly root = el("div", "ls-hist");
  private readonly canvas = el("canvas", "ls-hist-canvas");
  private readonly axis = el("div", "ls-hist-axis ls-muted ls-mono");
  readonly selection = el("div", "ls-hist-sel ls-muted");
  private hist: Hist | undefined;
  private bars: number[] = [];
  private logCounts = false;
  private selected = -1;

  constructor(private readonly onSelect: (range: [number, number] | undefined) => void) {
    this.root.append(this.canvas, this.axis, this.selection);
    if (typeof ResizeObserver !== "undefined")
      new ResizeObserver(() => this.draw()).observe(this.root);
    this.canvas.addEventListener("click", (e) => {
      const rect = this.canvas.getBoundingClientRect();
      const i = Math.floor(((e.clientX - rect.left) / rect.width) * DISPLAY_BINS);
      this.select(i === this.selected ? -1 : i);
    });
  }

  update(hist: Hist | undefined, logCounts: boolean): void {
    const changed = hist !== this.hist;
    this.hist = hist;
    this.logCounts = logCounts;
    if (changed) {
      this.bars = hist ? mergeBins(hist.counts, DISPLAY_BINS) : [];
      if (this.selected >= 0) this.select(-1);
    }
    this.root.dataset.ready = hist && hist.lo !== null ? "1" : "0";
    this.draw();
  }

  /** The value range of display bin i. */
  binRange(i: number): [number, number] | undefined {
    const h = this.hist;
    if (!h || h.lo === null || h.hi === null || i < 0 || i >= DISPLAY_BINS) return undefined;
    const w = (h.hi - h.lo) / DISPLAY_BINS;
    // The last bin is closed: it holds the maximum.
    return [h.lo + i * w, i === DISPLAY_BINS - 1 ? Number.POSITIVE_INFINITY : h.lo + (i + 1) * w];
  }

  select(i: number): void {
    const range = this.binRange(i);
    this.selected = range ? i : -1;
    this.root.dataset.selected = String(this.selected);
    if (range) {
      const hi = Number.isFinite(range[1]) ? shortNumber(range[1]) : shortNumber(this.hist?.hi);
      this.selection.textContent = `highlighting ${shortNumber(range[0])} … ${hi}: ${count(this.bars[i])} values (click again to clear)`;
    } else {
      this.selection.textContent = "";
    }
    this.draw();
    this.onSelect(range);
  }

  draw(): void {
    const h = this.hist;
    const cssW = Math.max(120, this.root.clientWidth || 300);
    const cssH = 64;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    this.canvas.style.height = `${cssH}px`;
    const ctx = this.canvas.getContext("2d");
    this.axis.replaceChildren();
    if (!ctx) return;
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!h || h.lo === null) {
      this.axis.append(el("span", "", h ? "no finite values" : "histogram: computing…"));
      return;
    }
    const f = (c: number) => (this.logCounts ? Math.log10(1 + c) : c);
    const top = Math.max(1e-9, ...this.bars.map(f));
    const bw = this.canvas.width / DISPLAY_BINS;
    const style = getComputedStyle(this.root);
    const fg = style.getPropertyValue("--jp-brand-color1").trim() || "#1976d2";
    for (let i = 0; i < DISPLAY_BINS; i++) {
      const bh = (f(this.bars[i]) / top) * (this.canvas.height - 2);
      ctx.fillStyle = i === this.selected ? "#ff9800" : fg;
      ctx.fillRect(i * bw + 0.5, this.canvas.height - bh, Math.max(1, bw - 1), bh);
    }
    this.axis.append(
      el("span", "", shortNumber(h.lo)),
      el("span", "", this.logCounts ? "log count" : "count"),
      el("span", "", shortNumber(h.hi)),
    );
  }
}
