// The heatmap view: a 2-D window of a tensor drawn on a canvas at device pixel ratio, zoomable
// (wheel, drag, box, double-click reset) with axis ticks in tensor indices; a colour bar and
// scale controls; stats panel and histogram; NaN/Inf marks with counts; the exact value under
// the pointer. While a tile is on its way the coarser data already held (the baked overview, or
// the previous tile) is drawn scaled: the canvas is never blank.

import {
  cssRgb,
  LUT_SIZE,
  lut,
  NAN_RGB,
  NEGINF_RGB,
  POSINF_RGB,
  type RangeStats,
} from "../core/colormap";
import { el, ensureStyle } from "../core/dom";
import { cellFormat, count, shortNumber } from "../core/format";
import { type Requester, Superseded } from "../core/request";
import { BASE_CSS } from "../core/theme";
import { asFloat64, type Decoded, decodeArray, elementText, type Payload } from "../core/wire";
import { renderAxis } from "./axes";
import { HistogramView } from "./histogram";
import { dequantize, type Quant } from "./quant";
import { type Hist, paintValues, shownRange, type ViewScale, viewScale } from "./scale";
import { fullWindow, isFull, tileRequest, type Win } from "./viewport";
import { ZoomController } from "./zoom";

export interface Stats {
  shape: number[];
  dtype: string;
  numel: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  norm?: number | null;
  zeros?: number | null;
  nan: number;
  posinf: number;
  neginf: number;
}

export interface Meta {
  token: number;
  kind: "2d" | "1d" | "nd" | "empty";
  shape: [number, number];
  source_shape: number[];
  dtype: string;
  stats: Stats;
  t_sent?: number;
  axes?: number[];
  layout?: string;
  grid?: [number, number];
}

export interface Base {
  data: Payload;
  window: [number, number, number, number];
  exact: boolean;
  agg: string;
}

export interface HistPayload {
  token: number;
  lo: number | null;
  hi: number | null;
  abs_lo: number | null;
  abs_hi: number | null;
  counts: Payload;
}

export interface HeatmapState {
  meta: Meta;
  base: Base | Record<string, never>;
  title: string;
  colormap: string;
  vmin: number | null;
  vmax: number | null;
  height: number;
  agg?: string;
  scale?: string;
  clip?: [number, number];
  logCounts?: boolean;
  hist?: HistPayload | Record<string, never>;
  index?: number[];
  /** Names of the rows and/or columns (tokens of an attention matrix) for the axes. */
  axisLabels?: { rows?: string[] | null; cols?: string[] | null };
}

/** What the view changes in the model (the entry maps these to traits). */
export type Setter = (name: string, value: unknown) => void;

export interface TilePainted {
  window: [number, number, number, number];
  ms: number;
  bytes: number;
  exact: boolean;
}

const AXIS_W = 44;

const CSS = `
.ls-heatmap .ls-plot { display: grid; grid-template-columns: ${AXIS_W}px 1fr; margin: 6px 0 2px 0; }
.ls-heatmap .ls-canvas-wrap { position: relative; width: 100%; min-width: 0; }
.ls-heatmap canvas.ls-canvas { display: block; width: 100%; image-rendering: pixelated; cursor: crosshair;
  border: 1px solid var(--jp-border-color2, #e0e0e0); box-sizing: border-box; touch-action: none; }
.ls-heatmap .ls-zoombox { position: absolute; border: 1px dashed var(--jp-brand-color1, #1976d2);
  background: rgba(25, 118, 210, 0.12); pointer-events: none; }
.ls-heatmap .ls-axis-y, .ls-heatmap .ls-axis-x { position: relative; font-family: var(--jp-code-font-family, monospace);
  font-size: 10px; color: var(--jp-ui-font-color2, rgba(0,0,0,0.54)); overflow: hidden; }
.ls-heatmap .ls-axis-x { height: 14px; grid-column: 2; }
.ls-heatmap .ls-axis-y .ls-tick { position: absolute; right: 4px; transform: translateY(-50%); white-space: nowrap; }
.ls-heatmap .ls-axis-x .ls-tick { position: absolute; top: 1px; transform: translateX(-50%); white-space: nowrap; }
.ls-heatmap .ls-readout { min-height: 1.4em; }
.ls-heatmap .ls-controls { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; margin: 4px 0; }
.ls-heatmap .ls-controls label { display: inline-flex; gap: 4px; align-items: center; }
.ls-heatmap .ls-controls input[type=number] { width: 5em; }
.ls-heatmap .ls-colorbar { display: flex; align-items: center; gap: 8px; margin-top: 4px; flex-wrap: wrap; }
.ls-heatmap .ls-cbar-strip { flex: 1 1 160px; min-width: 120px; max-width: 360px; }
.ls-heatmap .ls-cbar-strip canvas { display: block; width: 100%; height: 10px; border-radius: 2px; }
.ls-heatmap .ls-cbar-ticks { display: flex; justify-content: space-between; }
.ls-heatmap .ls-bad { white-space: nowrap; }
.ls-heatmap .ls-panels { display: flex; flex-wrap: wrap; gap: 8px 16px; margin-top: 6px; }
.ls-heatmap .ls-stats-panel { flex: 0 0 auto; margin: 0; display: grid; justify-content: start; grid-template-columns: auto auto; gap: 0 10px; align-content: start; }
.ls-heatmap .ls-stats-panel dt { white-space: nowrap; color: var(--jp-ui-font-color2, rgba(0,0,0,0.54)); }
.ls-heatmap .ls-stats-panel dd { margin: 0; white-space: nowrap; font-family: var(--jp-code-font-family, monospace); }
.ls-heatmap .ls-hist { flex: 1 1 240px; min-width: 200px; max-width: 520px; }
.ls-heatmap .ls-hist canvas { display: block; width: 100%; cursor: pointer; }
.ls-heatmap .ls-hist-axis { display: flex; justify-content: space-between; font-size: 10px; }
.ls-heatmap .ls-nd { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; margin: 2px 0; }
.ls-heatmap .ls-nd input[type=range] { width: 120px; }
.ls-heatmap .ls-status { font-size: 11px; }
`;

/** Row/column of the cell under a point of the canvas (CSS pixels) for the window `w`. */
export function cellAt(
  x: number,
  y: number,
  cssW: number,
  cssH: number,
  rows: number,
  cols: number,
  w: Win = fullWindow(rows, cols),
): [number, number] {
  const r = Math.floor(w.r0 + (y / cssH) * (w.r1 - w.r0));
  const c = Math.floor(w.c0 + (x / cssW) * (w.c1 - w.c0));
  return [Math.min(rows - 1, Math.max(0, r)), Math.min(cols - 1, Math.max(0, c))];
}

/** The N-D index text of a displayed cell: the source index for N-D views. */
export function indexText(meta: Meta, index: number[] | undefined, r: number, c: number): string {
  if (meta.kind === "1d") return `[${c}]`;
  if (meta.kind !== "nd") return `[${r}, ${c}]`;
  const nd = meta.source_shape.length;
  if (meta.layout === "kernels" && meta.grid) {
    const [kh, kw] = meta.grid;
    return `[${Math.floor(r / kh)}, ${Math.floor(c / kw)}, ${r % kh}, ${c % kw}]`;
  }
  const axes = meta.axes ?? [nd - 2, nd - 1];
  const idx = Array.from({ length: nd }, (_, k) => index?.[k] ?? 0);
  idx[axes[0]] = r;
  idx[axes[1]] = c;
  return `[${idx.join(", ")}]`;
}

/** A value written in a cell (read by tests through the root's lsCellTexts). */
export interface CellText {
  r: number;
  c: number;
  text: string;
  /** Left and right edge of the drawn text in canvas pixels. */
  x0: number;
  x1: number;
}

interface Layer {
  canvas: HTMLCanvasElement;
  window: [number, number, number, number];
  values: ArrayLike<number>;
  decoded?: Decoded;
  shape: [number, number];
  exact: boolean;
  agg: string;
  scaleKey: string;
  /** Colour range of the shown values (shownRange; computed when first needed). */
  range?: RangeStats | null;
}

export class HeatmapView {
  readonly root = el("div", "ls-view ls-heatmap");
  private readonly titleEl = el("div", "ls-title");
  private readonly statsEl = el("div", "ls-row ls-muted ls-stats");
  private readonly errorEl = el("div", "ls-error");
  private readonly controls = el("div", "ls-controls");
  private readonly ndEl = el("div", "ls-nd");
  private readonly plot = el("div", "ls-plot");
  private readonly yAxis = el("div", "ls-axis-y");
  private readonly xAxis = el("div", "ls-axis-x");
  private readonly wrap = el("div", "ls-canvas-wrap");
  private readonly canvas = el("canvas", "ls-canvas");
  private readonly zoomBox = el("div", "ls-zoombox");
  private readonly readout = el("div", "ls-readout ls-mono");
  private readonly statusEl = el("div", "ls-status ls-muted");
  private readonly pixelEl = el("div", "ls-pixel-note ls-muted");
  private readonly colorbar = el("div", "ls-colorbar");
  private readonly panels = el("div", "ls-panels");
  private readonly statsPanel = el("dl", "ls-stats-panel");
  private readonly histogram: HistogramView;
  private readonly zoom: ZoomController;
  private state: HeatmapState | undefined;
  private base: Layer | undefined;
  private tile: Layer | undefined;
  private hist: Hist | undefined;
  private scale: ViewScale | undefined;
  private win: Win = { r0: 0, r1: 1, c0: 0, c1: 1 };
  private highlight: [number, number] | undefined;
  private hoverCell: [number, number] | undefined;
  private paintedToken = -1;
  private resize: ResizeObserver | undefined;
  private offline = false;
  private tileTimer: ReturnType<typeof setTimeout> | undefined;
  private lastTileAsk = -Infinity;
  private frame = 0;
  private controlsKey = "";

  constructor(
    private readonly requester: Requester | undefined,
    private readonly onPainted: (token: number, ms: number) => void = () => {},
    private readonly set: Setter = () => {},
    private readonly onTile: (t: TilePainted) => void = () => {},
  ) {
    ensureStyle("ls-base-css", BASE_CSS);
    ensureStyle("ls-heatmap-css-2", CSS);
    this.errorEl.hidden = true;
    this.wrap.append(this.canvas, this.zoomBox);
    this.plot.append(this.yAxis, this.wrap, el("div"), this.xAxis);
    this.histogram = new HistogramView((range) => {
      this.highlight = range;
      this.repaintLayers();
      this.draw();
    });
    this.panels.append(this.statsPanel, this.histogram.root);
    this.root.append(
      this.titleEl,
      this.statsEl,
      this.errorEl,
      this.controls,
      this.ndEl,
      this.plot,
      this.readout,
      this.pixelEl,
      this.statusEl,
      this.colorbar,
      this.panels,
    );
    this.zoom = new ZoomController(this.canvas, this.zoomBox, {
      win: () => this.win,
      dims: () => this.dims(),
      setWin: (w) => this.setWindow(w),
      reset: () => this.resetZoom(),
    });
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => {
      this.hoverCell = undefined;
      this.readout.textContent = "";
    });
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => {
        this.draw();
        this.scheduleTile();
      });
      this.resize.observe(this.wrap);
    }
  }

  dispose(): void {
    this.resize?.disconnect();
    this.zoom.dispose();
    if (this.tileTimer) clearTimeout(this.tileTimer);
  }

  showError(message: string): void {
    this.errorEl.textContent = message;
    this.errorEl.hidden = !message;
  }

  /** No kernel answers (an exported page): zoom into the baked overview only. */
  setOffline(): void {
    this.offline = true;
    this.statusEl.textContent = "no kernel: zooming into the saved overview";
  }

  setOnline(): void {
    this.offline = false;
    this.statusEl.textContent = "";
    this.scheduleTile();
  }

  /** The window shown, in tensor cells (for tests and the benchmark). */
  get window(): Win {
    return { ...this.win };
  }

  private dims(): [number, number] {
    const s = this.state?.meta?.shape;
    return s ? [s[0], s[1]] : [1, 1];
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
    const newData = !prev || prev.meta !== meta || prev.base !== state.base;
    const reshaped =
      !prev?.meta?.shape ||
      prev.meta.shape[0] !== meta.shape[0] ||
      prev.meta.shape[1] !== meta.shape[1];
    if (reshaped) {
      this.win = fullWindow(meta.shape[0], meta.shape[1]);
      this.highlight = undefined;
    }
    if (!prev || prev.hist !== state.hist) this.hist = decodeHist(state.hist);
    this.renderStats(meta);
    this.renderControls(state);
    if (newData) {
      const base = state.base as Base;
      this.base = base.data ? this.makeLayer(base, decodeArray(base.data)) : undefined;
      this.tile = undefined;
      const sampled = (meta.stats as { sampled?: number[] }).sampled;
      // data-preview: the strided sample is on screen, the full passes are still running.
      if (base.agg === "sample" && sampled) {
        this.root.dataset.preview = "1";
        this.statusEl.textContent = `preview: every ${sampled.join(" x ")}-th cell; reading the whole tensor…`;
      } else {
        delete this.root.dataset.preview;
      }
      if (base.agg !== "sample" && !this.offline) {
        this.statusEl.textContent = "";
      }
    }
    this.scale = this.computeScale();
    this.repaintLayers();
    this.renderColorbar(meta);
    this.histogram.update(this.hist, state.logCounts ?? false);
    this.draw();
    this.scheduleTile();
  }

  /**
   * The colour scale. "auto" over an aggregated display (many cells a pixel) spans the shown
   * block values, not the tensor's min and max: block means of 16384^2 N(0,1) values lie
   * within +/-0.3 and would all be grey in a +/-5.8 range. Cells shown one to a pixel or more
   * use the tensor's range, so zooming in compares cells with the whole tensor.
   */
  private computeScale(): ViewScale | undefined {
    const state = this.state;
    if (!state?.meta?.kind) return undefined;
    const o = {
      colormap: state.colormap,
      scale: state.scale ?? "auto",
      vmin: state.vmin,
      vmax: state.vmax,
      clip: state.clip ?? [1, 99],
    } as const;
    const shown = this.shownBlocks();
    if (o.scale === "auto" && o.vmin == null && o.vmax == null && shown?.range) {
      const s = viewScale(shown.range, this.hist, o);
      return { ...s, note: `range of the shown block ${shown.layer.agg} values (1-99%)` };
    }
    return viewScale(state.meta.stats, this.hist, o);
  }

  /** The layer drawn on top, when it shows blocks of cells (not single cells), and its range. */
  private shownBlocks(): { layer: Layer; range: RangeStats | null } | undefined {
    const layer = this.tile ?? this.base;
    if (!layer || layer.exact) return undefined;
    const stats = this.state?.meta?.stats;
    if (layer.range === undefined && stats) layer.range = shownRange(layer.values, stats);
    return { layer, range: layer.range ?? null };
  }

  /** Whether "auto" colours follow the shown block values (see computeScale). */
  private followsShown(): boolean {
    const s = this.state;
    return (s?.scale ?? "auto") === "auto" && s?.vmin == null && s?.vmax == null;
  }

  /** What one block of the display is: "each block: mean of 16 x 16 cells". */
  private pixelNote(): string {
    const layer = this.tile ?? this.base;
    if (!layer) return "";
    const [r0, r1, c0, c1] = layer.window;
    const [h, w] = layer.shape;
    const bh = (r1 - r0) / Math.max(1, h);
    const bw = (c1 - c0) / Math.max(1, w);
    if (layer.exact || (bh <= 1 && bw <= 1)) return "";
    const n = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
    const what = layer.agg === "sample" ? "one sampled cell of" : `${layer.agg} of`;
    return `each block: ${what} ${n(bh)} x ${n(bw)} cells`;
  }

  private scaleKey(): string {
    const s = this.scale;
    return s ? `${s.map}|${s.lo}|${s.hi}|${s.log}|${this.highlight?.join(",") ?? ""}` : "";
  }

  private makeLayer(
    b: { window: [number, number, number, number]; exact: boolean; agg: string },
    d: Decoded,
    values?: ArrayLike<number>,
  ): Layer {
    const shape: [number, number] =
      d.shape.length === 2 ? [d.shape[0], d.shape[1]] : [1, d.shape[0] ?? 0];
    return {
      canvas: document.createElement("canvas"),
      window: b.window,
      values: values ?? asFloat64(d),
      decoded: values ? undefined : d,
      shape,
      exact: b.exact,
      agg: b.agg,
      scaleKey: "",
    };
  }

  /** Paint layers whose colours are stale (scale or highlight changed). */
  private repaintLayers(): void {
    const key = this.scaleKey();
    for (const layer of [this.base, this.tile]) {
      if (!layer || !this.scale || layer.scaleKey === key) continue;
      const [h, w] = layer.shape;
      layer.canvas.width = w;
      layer.canvas.height = h;
      const ctx = layer.canvas.getContext("2d");
      if (!ctx || !w || !h) continue;
      const img = ctx.createImageData(w, h);
      paintValues(layer.values, this.scale, img.data, this.highlight);
      ctx.putImageData(img, 0, 0);
      layer.scaleKey = key;
    }
  }

  private renderStats(meta: Meta | undefined): void {
    this.statsEl.replaceChildren();
    this.statsPanel.replaceChildren();
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
    const rows: [string, string][] = [
      ["shape", shape],
      ["dtype", meta.dtype],
      ["count", count(s.numel)],
      ["mean", shortNumber(s.mean)],
      ["std", shortNumber(s.std)],
      ["min", shortNumber(s.min)],
      ["max", shortNumber(s.max)],
      ["norm", shortNumber(s.norm)],
      [
        "sparsity",
        s.zeros === null || s.zeros === undefined
          ? "—"
          : `${(s.zeros * 100).toPrecision(3)}% zeros`,
      ],
      ["NaN", count(s.nan)],
      ["+Inf", count(s.posinf)],
      ["-Inf", count(s.neginf)],
    ];
    for (const [k, v] of rows) {
      const dd = el("dd", "", v);
      dd.dataset.key = k;
      this.statsPanel.append(el("dt", "", k), dd);
    }
  }

  private renderControls(state: HeatmapState): void {
    const meta = state.meta;
    const key = JSON.stringify([
      meta.kind,
      meta.source_shape,
      meta.axes,
      meta.layout,
      state.index,
      state.agg,
      state.scale,
      state.clip,
      state.vmin,
      state.vmax,
      state.logCounts,
    ]);
    if (key === this.controlsKey) return;
    this.controlsKey = key;
    this.controls.replaceChildren();
    this.ndEl.replaceChildren();
    if (meta.kind === "empty") return;
    const select = (cls: string, label: string, options: string[], value: string, name: string) => {
      const s = el("select", cls);
      for (const o of options) {
        const opt = el("option", "", o);
        opt.value = o;
        s.append(opt);
      }
      s.value = value;
      s.addEventListener("change", () => this.set(name, s.value));
      const l = el("label", "", label);
      l.append(s);
      this.controls.append(l);
      return s;
    };
    select("ls-agg", "blocks", ["mean", "maxabs", "min", "max"], state.agg ?? "mean", "agg");
    const mode = state.scale ?? "auto";
    select("ls-scale", "scale", ["auto", "symmetric", "percentile", "log", "fixed"], mode, "scale");
    const num = (cls: string, label: string, value: number | null, apply: (v: number) => void) => {
      const i = el("input", cls);
      i.type = "number";
      i.step = "any";
      if (value !== null && value !== undefined) i.value = String(value);
      i.addEventListener("change", () => {
        const v = Number.parseFloat(i.value);
        if (Number.isFinite(v)) apply(v);
      });
      const l = el("label", "", label);
      l.append(i);
      this.controls.append(l);
    };
    if (mode === "percentile") {
      const clip = state.clip ?? [1, 99];
      num("ls-clip-lo", "from %", clip[0], (v) => this.set("clip", [v, clip[1]]));
      num("ls-clip-hi", "to %", clip[1], (v) => this.set("clip", [clip[0], v]));
    }
    if (mode === "fixed") {
      num("ls-vmin", "min", state.vmin, (v) => this.set("vmin", v));
      num("ls-vmax", "max", state.vmax, (v) => this.set("vmax", v));
    }
    const lc = el("input", "ls-logcount");
    lc.type = "checkbox";
    lc.checked = state.logCounts ?? false;
    lc.addEventListener("change", () => this.set("log_counts", lc.checked));
    const lcl = el("label", "", "log counts");
    lcl.prepend(lc);
    this.controls.append(lcl);
    const reset = el("button", "ls-reset", "reset zoom");
    reset.addEventListener("click", () => this.resetZoom());
    this.controls.append(reset);
    this.renderNd(state);
  }

  private renderNd(state: HeatmapState): void {
    const meta = state.meta;
    const shape = meta.source_shape;
    const nd = shape.length;
    if (nd <= 2) return;
    const axes = meta.axes ?? [nd - 2, nd - 1];
    const kernels = meta.layout === "kernels";
    if (!kernels) {
      for (const [k, cls, label] of [
        [0, "ls-axis-row", "rows"],
        [1, "ls-axis-col", "columns"],
      ] as const) {
        const s = el("select", cls);
        for (let a = 0; a < nd; a++) {
          const opt = el("option", "", `axis ${a} (${shape[a]})`);
          opt.value = String(a);
          s.append(opt);
        }
        s.value = String(axes[k]);
        s.addEventListener("change", () => {
          const next = [...axes];
          const v = Number(s.value);
          if (next[1 - k] === v) next[1 - k] = next[k];
          next[k] = v;
          this.set("axes", next);
        });
        const l = el("label", "", label);
        l.append(s);
        this.ndEl.append(l);
      }
      const index = Array.from({ length: nd }, (_, a) => state.index?.[a] ?? 0);
      for (let a = 0; a < nd; a++) {
        if (a === axes[0] || a === axes[1]) continue;
        const r = el("input", "ls-slider");
        r.type = "range";
        r.min = "0";
        r.max = String(shape[a] - 1);
        r.value = String(index[a]);
        r.dataset.axis = String(a);
        const out = el("span", "ls-mono", `${index[a]} / ${shape[a]}`);
        r.addEventListener("input", () => {
          out.textContent = `${r.value} / ${shape[a]}`;
        });
        r.addEventListener("change", () => {
          const next = [...index];
          next[a] = Number(r.value);
          this.set("index", next);
        });
        const l = el("label", "", `axis ${a}`);
        l.append(r, out);
        this.ndEl.append(l);
      }
    }
    if (nd === 4) {
      const k = el("input", "ls-kernels");
      k.type = "checkbox";
      k.checked = kernels;
      k.addEventListener("change", () => this.set("arrangement", k.checked ? "kernels" : "slice"));
      const l = el("label", "", "grid of kernels (out × in)");
      l.prepend(k);
      this.ndEl.append(l);
    }
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
    const label = (v: number) => (scale.log ? shortNumber(10 ** v) : shortNumber(v));
    ticks.append(el("span", "ls-cbar-lo", label(scale.lo)));
    if (scale.diverging && !scale.log) ticks.append(el("span", "", "0"));
    ticks.append(el("span", "ls-cbar-hi", label(scale.hi)));
    strip.append(c, ticks);
    this.colorbar.append(strip);
    if (scale.note) this.colorbar.append(el("span", "ls-cbar-note ls-muted", scale.note));
    const s = meta.stats;
    const bad: [string, number, readonly [number, number, number]][] = [
      ["NaN", s.nan, NAN_RGB],
      ["+Inf", s.posinf, POSINF_RGB],
      ["-Inf", s.neginf, NEGINF_RGB],
    ];
    for (const [name, n, rgb] of bad) {
      if (!n) continue;
      const item = el("span", "ls-bad ls-mono");
      item.dataset.kind = name;
      const sw = el("span", "ls-swatch");
      sw.style.background = cssRgb(rgb);
      item.append(sw, document.createTextNode(`${name} ${count(n)}`));
      this.colorbar.append(item);
    }
  }

  /** Canvas size in CSS pixels: full width, the tensor's aspect kept where it fits in `height`. */
  private cssSize(): [number, number] {
    const meta = this.state?.meta;
    const width = Math.max(40, this.wrap.clientWidth || 400);
    // No data yet (`_meta` is {} until the kernel assigns a tensor): nothing to size.
    if (!meta?.kind || meta.kind === "empty") return [width, 0];
    if (meta.kind === "1d") return [width, 40];
    const [rows, cols] = meta.shape;
    if (meta.layout === "kernels") {
      // Square cells, so each kh x kw kernel is drawn square: taller than `height` if need be
      // (up to 12 px a cell, 720 px in all), narrower than the view rather than stretched.
      const maxH = Math.max(this.state?.height ?? 360, Math.min(720, rows * 12));
      const cell = Math.min(width / cols, maxH / rows);
      return [Math.max(24, Math.round(cell * cols)), Math.max(40, Math.round(cell * rows))];
    }
    const height = Math.max(
      40,
      Math.min(this.state?.height ?? 360, Math.round((width * rows) / cols)),
    );
    return [width, height];
  }

  setWindow(w: Win): void {
    this.win = w;
    this.draw();
    this.scheduleTile();
  }

  resetZoom(): void {
    const [rows, cols] = this.dims();
    this.setWindow(fullWindow(rows, cols));
  }

  draw(): void {
    const meta = this.state?.meta;
    if (!meta?.kind) return; // no data assigned yet
    if (meta.kind === "empty") {
      this.plot.hidden = true;
      let empty = this.root.querySelector(".ls-empty");
      if (!empty) {
        empty = el("div", "ls-empty");
        this.plot.after(empty);
      }
      empty.textContent = `Empty tensor of shape (${meta.source_shape.join(", ")}): nothing to show.`;
      this.reportPainted(meta);
      return;
    }
    this.root.querySelector(".ls-empty")?.remove();
    this.plot.hidden = false;
    const [cssW, cssH] = this.cssSize();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.height = `${cssH}px`;
    this.canvas.style.width = meta.layout === "kernels" ? `${cssW}px` : "";
    this.yAxis.style.height = `${cssH}px`;
    const W = Math.round(cssW * dpr);
    const H = Math.round(cssH * dpr);
    if (this.canvas.width !== W) this.canvas.width = W;
    if (this.canvas.height !== H) this.canvas.height = H;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.imageSmoothingEnabled = false;
    const w = this.win;
    this.root.dataset.window = [w.r0, w.r1, w.c0, w.c1].map((v) => String(+v.toFixed(4))).join(",");
    // Coarse first (the baked overview, scaled), the tile on top where it covers the window.
    for (const layer of [this.base, this.tile]) {
      if (!layer) continue;
      const [lr0, lr1, lc0, lc1] = layer.window;
      const [lh, lw] = layer.shape;
      const sy = (lh * (w.r0 - lr0)) / (lr1 - lr0);
      const sx = (lw * (w.c0 - lc0)) / (lc1 - lc0);
      const sh = (lh * (w.r1 - w.r0)) / (lr1 - lr0);
      const sw = (lw * (w.c1 - w.c0)) / (lc1 - lc0);
      // drawImage with a source rect beyond the image clips; map to destination explicitly.
      const cx0 = Math.max(0, sx);
      const cy0 = Math.max(0, sy);
      const cx1 = Math.min(lw, sx + sw);
      const cy1 = Math.min(lh, sy + sh);
      if (cx1 <= cx0 || cy1 <= cy0) continue;
      const dx = ((cx0 - sx) / sw) * W;
      const dy = ((cy0 - sy) / sh) * H;
      const dw = ((cx1 - cx0) / sw) * W;
      const dh = ((cy1 - cy0) / sh) * H;
      ctx.drawImage(layer.canvas, cx0, cy0, cx1 - cx0, cy1 - cy0, dx, dy, dw, dh);
    }
    this.drawCellText(ctx, W, H, dpr, meta);
    this.pixelEl.textContent = this.pixelNote();
    this.drawGrid(ctx, W, H, meta);
    const names = this.state?.axisLabels;
    renderAxis(this.xAxis, "x", w.c0, w.c1, cssW, 0, names?.cols ?? undefined);
    if (meta.kind === "1d") this.yAxis.replaceChildren();
    else renderAxis(this.yAxis, "y", w.r0, w.r1, cssH, 0, names?.rows ?? undefined);
    this.reportPainted(meta);
  }

  /**
   * Values written in the cells once they are big enough to read: one format for the whole view
   * (cellFormat, from the data's range), exact on hover. A cell cut by the canvas edge gets its
   * text centred in the part that shows, or none if it does not fit there: a number must never
   * lose its minus sign (or leading digits) to the edge.
   */
  private drawCellText(
    ctx: CanvasRenderingContext2D,
    W: number,
    H: number,
    dpr: number,
    meta: Meta,
  ): void {
    const drawn: CellText[] = [];
    (this.root as HTMLElement & { lsCellTexts?: CellText[] }).lsCellTexts = drawn;
    const layer = this.exactLayer();
    const w = this.win;
    if (!layer?.decoded) return;
    const cw = W / (w.c1 - w.c0);
    const ch = H / (w.r1 - w.r0);
    if (cw < 44 * dpr || ch < 16 * dpr) return;
    const [lr0, , lc0] = layer.window;
    const [, lw] = layer.shape;
    const d = layer.decoded;
    const stats = meta.stats;
    const float = d.source.startsWith("float") || d.source === "bfloat16";
    const fmt = cellFormat(stats?.min ?? this.scale?.lo, stats?.max ?? this.scale?.hi, {
      log: this.scale?.log,
    });
    ctx.font = `${Math.round(10 * dpr)}px monospace`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let r = Math.floor(w.r0); r < Math.ceil(w.r1); r++) {
      const y0 = Math.max(0, (r - w.r0) * ch);
      const y1 = Math.min(H, (r + 1 - w.r0) * ch);
      if (y1 - y0 < 12 * dpr) continue;
      for (let c = Math.floor(w.c0); c < Math.ceil(w.c1); c++) {
        const i = (r - lr0) * lw + (c - lc0);
        if (i < 0 || i >= layer.values.length) continue;
        const v = layer.values[i];
        const text = float ? fmt(v) : elementText(d, i);
        const x0 = Math.max(0, (c - w.c0) * cw);
        const x1 = Math.min(W, (c + 1 - w.c0) * cw);
        const tw = ctx.measureText(text).width;
        if (tw > x1 - x0 - 4 * dpr) continue;
        const s = this.scale;
        const mid = s ? (s.lo + s.hi) / 2 : 0;
        const dark = s && !s.log && s.diverging ? Math.abs(v) > Math.abs(s.hi) * 0.6 : v < mid;
        ctx.fillStyle = dark ? "#fff" : "#000";
        ctx.fillText(text, (x0 + x1) / 2, (y0 + y1) / 2);
        drawn.push({ r, c, text, x0: (x0 + x1 - tw) / 2, x1: (x0 + x1 + tw) / 2 });
      }
    }
  }

  /** Gaps between the kernels of a kernels grid, in the page's background colour. */
  private drawGrid(ctx: CanvasRenderingContext2D, W: number, H: number, meta: Meta): void {
    if (meta.layout !== "kernels" || !meta.grid) return;
    const [kh, kw] = meta.grid;
    const w = this.win;
    const ch = H / (w.r1 - w.r0);
    const cw = W / (w.c1 - w.c0);
    const bg = getComputedStyle(this.root).getPropertyValue("--jp-layout-color0").trim() || "#fff";
    ctx.fillStyle = bg;
    // A gap of about a sixth of a cell, 1 to 4 px: wide enough to see, never hiding a cell.
    const gap = (px: number) => Math.max(1, Math.min(4, Math.round(px / 6)));
    if (cw * kw >= 4) {
      const g = gap(cw);
      for (let c = Math.ceil(w.c0 / kw) * kw; c <= w.c1; c += kw) {
        if (c <= 0 || c >= meta.shape[1]) continue;
        ctx.fillRect(Math.round((c - w.c0) * cw - g / 2), 0, g, H);
      }
    }
    if (ch * kh >= 4) {
      const g = gap(ch);
      for (let r = Math.ceil(w.r0 / kh) * kh; r <= w.r1; r += kh) {
        if (r <= 0 || r >= meta.shape[0]) continue;
        ctx.fillRect(0, Math.round((r - w.r0) * ch - g / 2), W, g);
      }
    }
  }

  /** The layer that holds exact values for the whole current window, if any. */
  private exactLayer(): Layer | undefined {
    const w = this.win;
    for (const layer of [this.tile, this.base]) {
      if (!layer?.exact) continue;
      const [r0, r1, c0, c1] = layer.window;
      if (
        r0 <= Math.floor(w.r0) &&
        c0 <= Math.floor(w.c0) &&
        r1 >= Math.ceil(w.r1) &&
        c1 >= Math.ceil(w.c1)
      )
        return layer;
    }
    return undefined;
  }

  private scheduleTile(): void {
    // The first change after a quiet frame asks at once; the rest of a burst of wheel events is
    // coalesced into one request per frame (the last window wins). Not yet on the page: wait
    // a frame for the layout to give the canvas its size.
    const now = performance.now();
    if (!this.tileTimer && now - this.lastTileAsk >= 16 && this.root.isConnected) {
      this.lastTileAsk = now;
      this.requestTile();
      return;
    }
    if (this.tileTimer) clearTimeout(this.tileTimer);
    this.tileTimer = setTimeout(() => {
      this.lastTileAsk = performance.now();
      this.requestTile();
    }, 16);
  }

  private requestTile(): void {
    this.tileTimer = undefined;
    const meta = this.state?.meta;
    const base = this.state?.base as Base | undefined;
    if (!meta || meta.kind === "empty" || !this.requester || !base?.data || !this.scale) return;
    if (base.exact || base.agg === "sample") return; // all here already / the kernel is busy
    const [rows, cols] = meta.shape;
    const W = this.canvas.width;
    const H = this.canvas.height;
    const w = this.win;
    const [bh, bw] = this.base?.shape ?? [0, 0];
    if (isFull(w, rows, cols) && bh >= Math.min(H, rows) && bw >= Math.min(W, cols)) {
      if (this.tile) {
        this.tile = undefined;
        this.scale = this.computeScale();
        this.repaintLayers();
        this.renderColorbar(meta);
        this.draw();
      }
      return;
    }
    const req = tileRequest(w, W, H, rows, cols);
    const t = this.tile;
    if (
      t &&
      t.scaleKey === this.scaleKey() &&
      t.window.every((v, i) => v === req.window[i]) &&
      t.shape[0] >= req.out[0] &&
      t.shape[1] >= req.out[1]
    )
      return;
    if (this.offline) return;
    const s = this.scale;
    const token = meta.token;
    const t0 = performance.now();
    const args = {
      ...req,
      agg: this.state?.agg ?? base.agg,
      // Over blocks, "auto" follows the shown values: the kernel quantizes the tile over its own
      // range (returned in quant), which then sets the colours.
      ...(this.followsShown()
        ? { lo: null, hi: null, log: false }
        : { lo: s.log ? 10 ** s.lo : s.lo, hi: s.log ? 10 ** s.hi : s.hi, log: s.log }),
      token,
    };
    const slow = setTimeout(() => {
      this.statusEl.textContent = "loading tile…";
    }, 400);
    this.requester
      .request("tile", args, { channel: "tile" })
      .then((reply) => {
        clearTimeout(slow);
        if (this.state?.meta.token !== token) return;
        const c = reply.content as Record<string, unknown>;
        const data = { ...(c.data as Payload), buffer: reply.buffers[0] };
        const d = decodeArray(data);
        const quant = c.quant as Quant | null;
        const layer = this.makeLayer(
          {
            window: c.window as [number, number, number, number],
            exact: Boolean(c.exact),
            agg: String(c.agg),
          },
          d,
          quant ? dequantize(d.data as Uint8Array, quant) : undefined,
        );
        this.tile = layer;
        this.scale = this.computeScale();
        this.repaintLayers();
        if (this.state?.meta) this.renderColorbar(this.state.meta);
        this.draw();
        this.statusEl.textContent = "";
        const bytes = reply.buffers[0]?.byteLength ?? 0;
        cancelAnimationFrame(this.frame);
        this.frame = requestAnimationFrame(() => {
          const ms = performance.now() - t0;
          this.root.dataset.tileWindow = layer.window.join(",");
          this.root.dataset.tileMs = ms.toFixed(1);
          this.root.dataset.tileBytes = String(bytes);
          this.root.dataset.tileExact = String(layer.exact);
          this.onTile({ window: layer.window, ms, bytes, exact: layer.exact });
        });
      })
      .catch((err: Error) => {
        clearTimeout(slow);
        if (err instanceof Superseded) return;
        if (err.name === "Timeout" && !this.requester?.live) {
          this.setOffline();
          return;
        }
        this.statusEl.textContent = "";
        this.showError(`tile: ${err.message}`);
      });
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
    const base = this.base;
    if (!meta || !base || meta.kind === "empty" || this.zoom.dragging) return;
    const rect = this.canvas.getBoundingClientRect();
    const [rows, cols] = meta.shape;
    const [r, c] = cellAt(
      e.clientX - rect.left,
      e.clientY - rect.top,
      rect.width,
      rect.height,
      rows,
      cols,
      this.win,
    );
    if (this.hoverCell && this.hoverCell[0] === r && this.hoverCell[1] === c) return;
    this.hoverCell = [r, c];
    const where = indexText(meta, this.state?.index, r, c);
    // An exact layer that holds the cell answers locally.
    for (const layer of [this.tile, base]) {
      if (!layer?.exact || !layer.decoded) continue;
      const [r0, r1, c0, c1] = layer.window;
      if (r < r0 || r >= r1 || c < c0 || c >= c1) continue;
      this.readout.textContent = `${where} = ${elementText(layer.decoded, (r - r0) * (c1 - c0) + (c - c0))}`;
      return;
    }
    const d = base.decoded;
    if (!d) return;
    const [bh, bw] = base.shape;
    const br = Math.min(bh - 1, Math.floor((r * bh) / rows));
    const bc = Math.min(bw - 1, Math.floor((c * bw) / cols));
    const local = elementText(d, br * bw + bc);
    this.readout.textContent = `${where} ≈ ${local} (${base.agg} of a block)`;
    if (!this.requester || this.offline) return;
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

function decodeHist(h: HistPayload | Record<string, never> | undefined): Hist | undefined {
  if (!h || !("counts" in h) || !h.counts) return undefined;
  const d = decodeArray(h.counts);
  return {
    token: h.token,
    lo: h.lo,
    hi: h.hi,
    abs_lo: h.abs_lo,
    abs_hi: h.abs_hi,
    counts: asFloat64(d),
  };
}
