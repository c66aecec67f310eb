// The heatmap view: a 2-D array drawn on a canvas at device pixel ratio, a colour bar, NaN/Inf
// marks with counts, and the exact value under the pointer (asked from the kernel when the
// baked overview is downsampled).

import {
  chooseScale,
  cssRgb,
  LUT_SIZE,
  lut,
  NAN_RGB,
  NEGINF_RGB,
  POSINF_RGB,
  paint,
  type Scale,
} from "../core/colormap";
import { el, ensureStyle } from "../core/dom";
import { count, shortNumber } from "../core/format";
import { type Requester, Superseded } from "../core/request";
import { BASE_CSS } from "../core/theme";
import { asFloat64, type Decoded, decodeArray, elementText, type Payload } from "../core/wire";

export interface Stats {
  shape: number[];
  dtype: string;
  numel: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nan: number;
  posinf: number;
  neginf: number;
}

export interface Meta {
  token: number;
  kind: "2d" | "1d" | "empty";
  shape: [number, number];
  source_shape: number[];
  dtype: string;
  stats: Stats;
  t_sent?: number;
}

export interface Base {
  data: Payload;
  window: [number, number, number, number];
  exact: boolean;
  agg: string;
}

export interface HeatmapState {
  meta: Meta;
  base: Base | Record<string, never>;
  title: string;
  colormap: string;
  vmin: number | null;
  vmax: number | null;
  height: number;
}

const CSS = `
.ls-heatmap .ls-canvas-wrap { position: relative; width: 100%; margin: 6px 0 4px 0; }
.ls-heatmap canvas.ls-canvas { display: block; width: 100%; image-rendering: pixelated; cursor: crosshair;
  border: 1px solid var(--jp-border-color2, #e0e0e0); box-sizing: border-box; }
.ls-heatmap .ls-readout { min-height: 1.4em; }
.ls-heatmap .ls-colorbar { display: flex; align-items: center; gap: 8px; margin-top: 4px; flex-wrap: wrap; }
.ls-heatmap .ls-cbar-strip { flex: 1 1 160px; min-width: 120px; max-width: 360px; }
.ls-heatmap .ls-cbar-strip canvas { display: block; width: 100%; height: 10px; border-radius: 2px; }
.ls-heatmap .ls-cbar-ticks { display: flex; justify-content: space-between; }
.ls-heatmap .ls-bad { white-space: nowrap; }
`;

/** Row/column of the cell under a point of the canvas (CSS pixels). */
export function cellAt(
  x: number,
  y: number,
  cssW: number,
  cssH: number,
  rows: number,
  cols: number,
): [number, number] {
  const r = Math.min(rows - 1, Math.max(0, Math.floor((y / cssH) * rows)));
  const c = Math.min(cols - 1, Math.max(0, Math.floor((x / cssW) * cols)));
  return [r, c];
}

export class HeatmapView {
  readonly root = el("div", "ls-view ls-heatmap");
  private readonly titleEl = el("div", "ls-title");
  private readonly statsEl = el("div", "ls-row ls-muted ls-stats");
  private readonly errorEl = el("div", "ls-error");
  private readonly wrap = el("div", "ls-canvas-wrap");
  private readonly canvas = el("canvas", "ls-canvas");
  private readonly readout = el("div", "ls-readout ls-mono");
  private readonly colorbar = el("div", "ls-colorbar");
  private readonly offscreen = document.createElement("canvas");
  private state: HeatmapState | undefined;
  private decoded: Decoded | undefined;
  private values: ArrayLike<number> | undefined;
  private scale: Scale | undefined;
  private hoverCell: [number, number] | undefined;
  private paintedToken = -1;
  private resize: ResizeObserver | undefined;

  constructor(
    private readonly requester: Requester | undefined,
    private readonly onPainted: (token: number, ms: number) => void = () => {},
  ) {
    ensureStyle("ls-base-css", BASE_CSS);
    ensureStyle("ls-heatmap-css", CSS);
    this.errorEl.hidden = true;
    this.wrap.append(this.canvas);
    this.root.append(
      this.titleEl,
      this.statsEl,
      this.errorEl,
      this.wrap,
      this.readout,
      this.colorbar,
    );
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => {
      this.hoverCell = undefined;
      this.readout.textContent = "";
    });
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => this.draw());
      this.resize.observe(this.wrap);
    }
  }

  dispose(): void {
    this.resize?.disconnect();
  }

  showError(message: string): void {
    this.errorEl.textContent = message;
    this.errorEl.hidden = !message;
  }

  update(state: HeatmapState): void {
    const prev = this.state;
    this.state = state;
    this.titleEl.textContent = state.title;
    this.titleEl.hidden = !state.title;
    const meta = state.meta;
    if (!meta?.kind) {
      this.renderStats(undefined);
      return;
    }
    if (!prev || prev.base !== state.base) {
      const base = state.base as Base;
      this.decoded = base.data ? decodeArray(base.data) : undefined;
      this.values = this.decoded ? asFloat64(this.decoded) : undefined;
    }
    this.renderStats(meta);
    this.scale = chooseScale(meta.stats, state.colormap, state.vmin, state.vmax);
    this.paintOffscreen();
    this.renderColorbar(meta);
    this.draw();
  }

  private renderStats(meta: Meta | undefined): void {
    this.statsEl.replaceChildren();
    if (!meta) return;
    const s = meta.stats;
    const shape = `(${meta.source_shape.join(", ")}${meta.source_shape.length === 1 ? "," : ""})`;
    const parts = [`${meta.dtype} ${shape}`];
    if (meta.kind !== "empty") {
      parts.push(
        `min ${shortNumber(s.min)}`,
        `max ${shortNumber(s.max)}`,
        `mean ${shortNumber(s.mean)}`,
        `std ${shortNumber(s.std)}`,
      );
    }
    for (const p of parts) this.statsEl.append(el("span", "", p));
  }

  private renderColorbar(meta: Meta): void {
    this.colorbar.replaceChildren();
    if (meta.kind === "empty" || !this.scale) return;
    const scale = this.scale;
    const strip = el("div", "ls-cbar-strip");
    const c = document.createElement("canvas");
    c.width = LUT_SIZE;
    c.height = 1;
    const ctx = c.getContext("2d");
    if (ctx) {
      const img = ctx.createImageData(LUT_SIZE, 1);
      const table = lut(scale.map);
      for (let i = 0; i < LUT_SIZE; i++) {
        img.data.set([table[i * 3], table[i * 3 + 1], table[i * 3 + 2], 255], i * 4);
      }
      ctx.putImageData(img, 0, 0);
    }
    const ticks = el("div", "ls-cbar-ticks ls-muted ls-mono");
    ticks.append(el("span", "", shortNumber(scale.lo)));
    if (scale.diverging) ticks.append(el("span", "", "0"));
    ticks.append(el("span", "", shortNumber(scale.hi)));
    strip.append(c, ticks);
    this.colorbar.append(strip);
    const s = meta.stats;
    const bad: [string, number, readonly [number, number, number]][] = [
      ["NaN", s.nan, NAN_RGB],
      ["+Inf", s.posinf, POSINF_RGB],
      ["-Inf", s.neginf, NEGINF_RGB],
    ];
    for (const [label, n, rgb] of bad) {
      if (!n) continue;
      const item = el("span", "ls-bad ls-mono");
      item.dataset.kind = label;
      const sw = el("span", "ls-swatch");
      sw.style.background = cssRgb(rgb);
      item.append(sw, document.createTextNode(`${label} ${count(n)}`));
      this.colorbar.append(item);
    }
  }

  private paintOffscreen(): void {
    const d = this.decoded;
    if (!d || !this.values || !this.scale) return;
    const [h, w] = d.shape.length === 2 ? d.shape : [1, d.shape[0] ?? 0];
    this.offscreen.width = w;
    this.offscreen.height = h;
    const ctx = this.offscreen.getContext("2d");
    if (!ctx || !w || !h) return;
    const img = ctx.createImageData(w, h);
    paint(this.values, this.scale, img.data);
    ctx.putImageData(img, 0, 0);
  }

  /** Canvas size in CSS pixels: full width, aspect kept where it fits in `height`. */
  private cssSize(): [number, number] {
    const meta = this.state?.meta;
    const width = Math.max(40, this.wrap.clientWidth || 400);
    if (!meta || meta.kind === "empty") return [width, 0];
    if (meta.kind === "1d") return [width, 40];
    const [rows, cols] = meta.shape;
    const height = Math.max(
      40,
      Math.min(this.state?.height ?? 360, Math.round((width * rows) / cols)),
    );
    return [width, height];
  }

  draw(): void {
    const meta = this.state?.meta;
    if (!meta) return;
    if (meta.kind === "empty") {
      this.canvas.hidden = true;
      let empty = this.wrap.querySelector(".ls-empty");
      if (!empty) {
        empty = el("div", "ls-empty");
        this.wrap.append(empty);
      }
      empty.textContent = `Empty tensor of shape (${meta.source_shape.join(", ")}): nothing to show.`;
      this.reportPainted(meta);
      return;
    }
    this.wrap.querySelector(".ls-empty")?.remove();
    this.canvas.hidden = false;
    const [cssW, cssH] = this.cssSize();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.height = `${cssH}px`;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.offscreen, 0, 0, this.canvas.width, this.canvas.height);
    this.reportPainted(meta);
  }

  private reportPainted(meta: Meta): void {
    if (meta.token === this.paintedToken) return;
    this.paintedToken = meta.token;
    const token = meta.token;
    requestAnimationFrame(() => {
      const ms = meta.t_sent
        ? performance.timeOrigin + performance.now() - meta.t_sent
        : Number.NaN;
      this.root.dataset.token = String(token);
      this.root.dataset.paintMs = String(ms);
      this.onPainted(token, ms);
    });
  }

  private hover(e: MouseEvent): void {
    const meta = this.state?.meta;
    const d = this.decoded;
    const base = this.state?.base as Base | undefined;
    if (!meta || !d || !base || meta.kind === "empty") return;
    const rect = this.canvas.getBoundingClientRect();
    const [rows, cols] = meta.shape;
    const [r, c] = cellAt(
      e.clientX - rect.left,
      e.clientY - rect.top,
      rect.width,
      rect.height,
      rows,
      cols,
    );
    if (this.hoverCell && this.hoverCell[0] === r && this.hoverCell[1] === c) return;
    this.hoverCell = [r, c];
    const where = meta.kind === "1d" ? `[${c}]` : `[${r}, ${c}]`;
    // Index into the baked overview (equal to the tensor when it is exact).
    const [bh, bw] = d.shape;
    const br = Math.min(bh - 1, Math.floor((r * bh) / rows));
    const bc = Math.min(bw - 1, Math.floor((c * bw) / cols));
    const local = elementText(d, br * bw + bc);
    if (base.exact) {
      this.readout.textContent = `${where} = ${local}`;
      return;
    }
    this.readout.textContent = `${where} ≈ ${local} (${base.agg} of a block)`;
    if (!this.requester) return;
    this.requester
      .request("value", { row: r, col: c }, { channel: "hover" })
      .then((reply) => {
        if (this.hoverCell && this.hoverCell[0] === r && this.hoverCell[1] === c) {
          this.readout.textContent = `${where} = ${String(reply.content.text)}`;
        }
      })
      .catch((err: Error) => {
        if (err instanceof Superseded) return;
        if (this.hoverCell && this.hoverCell[0] === r && this.hoverCell[1] === c) {
          this.readout.textContent = `${where} ≈ ${local} (${base.agg} of a block; exact value unavailable: ${err.message})`;
        }
      });
  }
}
