// The projection view: WebGL points with pan/zoom, colour by any pushed colouring, a legend that
// toggles classes, a hover card with the sample's input (from the kernel, or baked offline),
// click/lasso selection, an epoch scrubber over pushed frames, and the progress of a background
// UMAP/t-SNE. It renders from its model's traits (see bind.ts) and keeps its CSS on its own root.
import { el } from "../core/dom";
import { count, shortNumber } from "../core/format";
import { RequestError, type Requester, Superseded } from "../core/request";
import { BASE_CSS } from "../core/theme";
import { type Decoded, decodeArray, type Payload } from "../core/wire";
import {
  autoPointSize,
  CORRECT_RGB,
  type Colouring,
  classColour,
  fitView,
  gradientCss,
  lassoSelect,
  PointGrid,
  pointColours,
  toData,
  toScreen,
  type ViewBox,
  zoomAt,
} from "./geometry";
import { PointRenderer } from "./points";

export const PROJECTION_CSS = `${BASE_CSS}
.ls-proj { display: flex; flex-direction: column; gap: 6px; }
.ls-proj-bar { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; }
.ls-proj-bar select, .ls-proj-bar button { font: inherit; }
.ls-proj-main { display: flex; gap: 8px; align-items: stretch; }
.ls-proj-plot { position: relative; flex: 1 1 auto; min-width: 200px; overflow: hidden;
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; cursor: grab; touch-action: none; }
.ls-proj-plot.ls-lasso-mode { cursor: crosshair; }
.ls-proj-canvas, .ls-proj-overlay { position: absolute; left: 0; top: 0; }
.ls-proj-legend { flex: 0 0 170px; max-height: 100%; overflow: auto; font-size: 12px; }
.ls-proj-legend .ls-item { cursor: pointer; user-select: none; padding: 1px 2px; border-radius: 2px; white-space: nowrap; }
.ls-proj-legend .ls-item:hover { background: var(--jp-layout-color2, #eee); }
.ls-proj-legend .ls-item.ls-off { opacity: 0.35; text-decoration: line-through; }
.ls-proj-bar-grad { height: 10px; border-radius: 2px; margin: 4px 0; }
.ls-proj-card { position: absolute; pointer-events: none; background: var(--jp-layout-color0, #fff);
  border: 1px solid var(--jp-border-color1, #bdbdbd); border-radius: 4px; padding: 6px; font-size: 12px;
  box-shadow: 0 2px 6px rgba(0,0,0,0.2); max-width: 260px; z-index: 2; }
.ls-proj-card canvas { image-rendering: pixelated; display: block; margin-bottom: 4px;
  border: 1px solid var(--jp-border-color2, #e0e0e0); }
.ls-proj-card .ls-tokens { font-family: var(--jp-code-font-family, monospace); word-break: break-word; }
.ls-proj-progress { width: 120px; height: 6px; background: var(--jp-layout-color2, #eee); border-radius: 3px; overflow: hidden; display: inline-block; vertical-align: middle; }
.ls-proj-progress > div { height: 100%; background: var(--jp-brand-color1, #1976d2); }
.ls-proj-notes { font-size: 12px; }
.ls-proj [hidden] { display: none !important; }
.ls-proj-scrub { display: flex; gap: 8px; align-items: center; }
.ls-proj-scrub input { flex: 1 1 auto; }
.ls-proj-scrub { flex-wrap: wrap; }
.ls-proj-aligned { flex: 1 0 100%; font-size: 11px; }
`;

export type Setter = (name: string, value: unknown) => void;

export interface ArrayInfo {
  kind: "categorical" | "continuous";
  values: Payload;
  classes?: string[];
  range?: [number, number];
}

export interface ProjectionState {
  points: {
    layer?: string;
    method?: string;
    xy?: Payload;
    index?: Payload | null;
    n_total?: number;
    n_drawn?: number;
    explained?: number[] | null;
  };
  arrays: Record<string, ArrayInfo>;
  colorBy: string;
  selected: number[];
  hidden: string[];
  method: string;
  status: { state?: string; method?: string; progress?: number; text?: string };
  frames: { epochs?: number[]; xy?: Payload; method?: string };
  epoch: number;
  thumbs: {
    kind?: string;
    /** Sample indices of the baked inputs: an int32 buffer, {range: k} for 0..k-1, or a list
     * when empty. */
    index?: Payload | number[] | { range: number };
    data?: Payload;
    tokens?: string[][];
    left_out?: number;
  };
  notes: string[];
  height: number;
  pointSize: number;
  error: string;
}

interface SampleInfo {
  index: number;
  label?: number;
  prediction?: number;
  probability?: number;
  loss?: number;
  label_name?: string;
  prediction_name?: string;
  input?: { kind: string; tokens?: string[]; why?: string; total?: number };
}

const toF32 = (d: Decoded): Float32Array =>
  d.data instanceof Float32Array ? d.data : Float32Array.from(d.data as ArrayLike<number>);

export class ProjectionPanel {
  readonly root: HTMLElement;
  readonly renderer: PointRenderer;
  private readonly plot: HTMLElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly legend: HTMLElement;
  private readonly card: HTMLElement;
  private readonly title: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly notesEl: HTMLElement;
  private readonly errorEl: HTMLElement;
  private readonly methodSel: HTMLSelectElement;
  private readonly colourSel: HTMLSelectElement;
  private readonly selInfo: HTMLElement;
  private readonly lassoBtn: HTMLButtonElement;
  private readonly scrub: HTMLElement;
  private readonly scrubInput: HTMLInputElement;
  private readonly scrubLabel: HTMLElement;
  private readonly scrubNote: HTMLElement;
  private state: ProjectionState | null = null;
  private lastPoints: unknown = null;
  private lastFrames: unknown = null;
  private xy: Float32Array = new Float32Array(0);
  private shown: Float32Array = new Float32Array(0);
  private index: Int32Array | null = null;
  private slotOf = new Map<number, number>();
  private frames: Float32Array | null = null;
  private frameEpochs: number[] = [];
  private frame = -1;
  private colours: Uint8Array = new Uint8Array(0);
  private colouring: Colouring | null = null;
  private grid: PointGrid | null = null;
  private view: ViewBox = { cx: 0, cy: 0, k: 100, width: 400, height: 400 };
  private fitted = false;
  private width = 0;
  private lassoMode = false;
  private lasso: number[] = [];
  private hoverSlot = -1;
  private live = false;
  private offline = false;
  private raf = 0;
  private anim = 0;
  private resize: ResizeObserver | null = null;
  /** Set after a paint of new points: {n, method, t} (t: Date.now(), for benchmarks). */
  onPainted: (info: { n: number; method: string; t: number }) => void = () => {};

  constructor(
    private readonly requester: Requester,
    private readonly set: Setter,
  ) {
    this.root = el("div", "ls-view ls-proj");
    const style = el("style");
    style.textContent = PROJECTION_CSS;
    this.root.append(style);
    const bar = el("div", "ls-proj-bar");
    this.title = el("span", "ls-title");
    this.methodSel = el("select", "ls-proj-method");
    for (const [v, t] of [
      ["pca", "PCA"],
      ["umap", "UMAP"],
      ["tsne", "t-SNE"],
    ]) {
      const o = el("option", "", t);
      o.value = v;
      this.methodSel.append(o);
    }
    this.methodSel.addEventListener("change", () => this.set("method", this.methodSel.value));
    this.colourSel = el("select", "ls-proj-colour");
    this.colourSel.addEventListener("change", () => this.set("color_by", this.colourSel.value));
    this.lassoBtn = el("button", "ls-proj-lasso", "lasso");
    this.lassoBtn.title = "lasso: drag around points to select them (or shift+drag in pan mode)";
    this.lassoBtn.addEventListener("click", () => {
      this.lassoMode = !this.lassoMode;
      this.lassoBtn.textContent = this.lassoMode ? "lasso ✓" : "lasso";
      this.plot.classList.toggle("ls-lasso-mode", this.lassoMode);
    });
    const reset = el("button", "ls-proj-reset", "reset view");
    reset.addEventListener("click", () => {
      this.fitted = false;
      this.refit();
      this.requestDraw();
    });
    this.selInfo = el("span", "ls-muted ls-proj-selinfo");
    const clear = el("button", "ls-proj-clear", "clear selection");
    clear.addEventListener("click", () => this.set("selected", []));
    const l1 = el("label", "", "method ");
    l1.append(this.methodSel);
    const l2 = el("label", "", "colour ");
    l2.append(this.colourSel);
    this.statusEl = el("span", "ls-muted ls-proj-status");
    bar.append(this.title, l1, l2, this.lassoBtn, reset, this.selInfo, clear, this.statusEl);
    this.scrub = el("div", "ls-proj-scrub");
    this.scrubInput = el("input", "ls-proj-epoch");
    this.scrubInput.type = "range";
    this.scrubInput.min = "0";
    this.scrubInput.step = "1";
    this.scrubLabel = el("span", "ls-mono");
    this.scrubInput.addEventListener("input", () => {
      this.showFrame(Number(this.scrubInput.value), true);
      this.set("epoch", this.frameEpochs[this.frame] ?? -1);
    });
    this.scrubNote = el("span", "ls-muted ls-proj-aligned");
    this.scrub.append(el("span", "", "epoch"), this.scrubInput, this.scrubLabel, this.scrubNote);
    this.scrub.hidden = true;
    const main = el("div", "ls-proj-main");
    this.plot = el("div", "ls-proj-plot");
    this.renderer = new PointRenderer();
    this.overlay = el("canvas", "ls-proj-overlay");
    this.card = el("div", "ls-proj-card");
    this.card.hidden = true;
    this.plot.append(this.renderer.canvas, this.overlay, this.card);
    this.legend = el("div", "ls-proj-legend");
    main.append(this.plot, this.legend);
    this.errorEl = el("div", "ls-error");
    this.errorEl.hidden = true;
    this.notesEl = el("div", "ls-muted ls-proj-notes");
    this.root.append(bar, this.scrub, main, this.notesEl, this.errorEl);
    this.bindPointer();
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => this.layout());
      this.resize.observe(this.plot);
    }
  }

  /** No kernel answers (an exported page): hover uses the baked inputs only. */
  setOffline(): void {
    this.offline = true;
    this.methodSel.disabled = true;
    this.methodSel.title = "changing the method needs a running kernel";
  }

  setOnline(): void {
    this.offline = false;
    this.methodSel.disabled = false;
    this.methodSel.title = "";
  }

  showError(text: string): void {
    this.errorEl.hidden = !text;
    this.errorEl.textContent = text;
  }

  update(s: ProjectionState): void {
    this.state = s;
    this.plot.style.height = `${s.height}px`;
    if (s.points !== this.lastPoints) {
      this.lastPoints = s.points;
      this.loadPoints(s);
    }
    if (s.frames !== this.lastFrames) {
      this.lastFrames = s.frames;
      this.loadFrames(s);
    }
    this.methodSel.value = s.method;
    this.syncColourOptions(s);
    this.recolour();
    this.updateSelection();
    this.requestDraw();
    this.renderLegend();
    this.renderStatus();
    const drawn = s.points.n_drawn ?? 0;
    const total = s.points.n_total ?? 0;
    const notes = [...s.notes];
    if (drawn < total)
      notes.unshift(`${count(drawn)} of ${count(total)} samples drawn (see the notes below)`);
    const left = s.thumbs.left_out ?? 0;
    if (left > 0 && s.thumbs.kind !== "none")
      notes.push(
        `inputs of ${count(this.bakedIndex().length)} samples are baked for hovering offline; ${count(left)} need a running kernel`,
      );
    this.notesEl.textContent = notes.join(" · ");
    this.layout();
  }

  private loadPoints(s: ProjectionState): void {
    const p = s.points;
    if (!p.xy) return;
    this.xy = toF32(decodeArray(p.xy));
    this.index = p.index ? Int32Array.from(decodeArray(p.index).data as ArrayLike<number>) : null;
    this.slotOf.clear();
    if (this.index)
      for (let slot = 0; slot < this.index.length; slot++) this.slotOf.set(this.index[slot], slot);
    const expl = p.explained
      ? ` (${p.explained.map((e) => `${(e * 100).toFixed(0)}%`).join(", ")} of variance)`
      : "";
    this.title.textContent = `${p.layer || "(root)"} · ${(p.method ?? "").toUpperCase()}${p.method === "pca" ? expl : ""} · ${count(p.n_drawn ?? 0)} points`;
    if (this.frame < 0 || !this.frames) this.shown = this.xy;
    this.fitted = false;
    this.pendingPaint = { n: this.xy.length >> 1, method: String(p.method ?? "") };
  }

  private pendingPaint: { n: number; method: string } | null = null;

  private loadFrames(s: ProjectionState): void {
    const f = s.frames;
    if (!f.xy || !f.epochs?.length) {
      this.frames = null;
      this.frameEpochs = [];
      this.scrub.hidden = true;
      this.frame = -1;
      this.shown = this.xy;
      return;
    }
    this.frames = toF32(decodeArray(f.xy));
    this.frameEpochs = f.epochs;
    this.scrub.hidden = false;
    // how the epochs are aligned (a fixed basis, or each epoch from its neighbour's positions)
    this.scrubNote.textContent = f.method ? `aligned: ${f.method}` : "";
    this.scrubInput.max = String(f.epochs.length - 1);
    const want = f.epochs.indexOf(s.epoch);
    this.showFrame(want >= 0 ? want : f.epochs.length - 1, false);
  }

  /** Show recorded epoch `k` (frames pushed ahead: no kernel round trip), moving points smoothly. */
  showFrame(k: number, animate: boolean): void {
    if (!this.frames) return;
    const n = this.xy.length;
    const kk = Math.max(0, Math.min(this.frameEpochs.length - 1, k));
    const target = this.frames.subarray(kk * n, (kk + 1) * n);
    this.scrubInput.value = String(kk);
    this.scrubLabel.textContent = `${this.frameEpochs[kk]} (${kk + 1} of ${this.frameEpochs.length})`;
    const from =
      this.shown.length === n ? Float32Array.from(this.shown) : Float32Array.from(target);
    this.frame = kk;
    cancelAnimationFrame(this.anim);
    if (!animate) {
      this.shown = Float32Array.from(target);
      this.afterMove();
      return;
    }
    const t0 = performance.now();
    const step = () => {
      const t = Math.min(1, (performance.now() - t0) / 180);
      const e = t * (2 - t);
      const cur = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const a = from[i];
        const b = target[i];
        cur[i] = Number.isFinite(a) ? a + (b - a) * e : b;
      }
      this.shown = cur;
      this.afterMove();
      if (t < 1) this.anim = requestAnimationFrame(step);
    };
    this.anim = requestAnimationFrame(step);
  }

  private afterMove(): void {
    this.grid = null;
    this.renderer.setPositions(this.shown);
    this.updateSelection();
    this.requestDraw();
  }

  private syncColourOptions(s: ProjectionState): void {
    const names = Object.keys(s.arrays);
    const have = Array.from(this.colourSel.options).map((o) => o.value);
    if (have.join("\n") !== names.join("\n")) {
      this.colourSel.replaceChildren();
      for (const n of names) {
        const o = el("option", "", n);
        o.value = n;
        this.colourSel.append(o);
      }
    }
    this.colourSel.value = s.colorBy;
  }

  private currentColouring(): Colouring | null {
    const s = this.state;
    if (!s) return null;
    const a = s.arrays[s.colorBy];
    if (!a) return null;
    const d = decodeArray(a.values);
    return {
      kind: a.kind,
      values: d.data as ArrayLike<number>,
      classes: a.classes,
      range: a.range,
      palette: s.colorBy === "correct" ? CORRECT_RGB : undefined,
    };
  }

  private lastColourKey: unknown[] = [];

  private recolour(): void {
    const s = this.state;
    if (!s) return;
    const key = [s.arrays, s.colorBy, s.hidden.join("\u0000"), this.xy];
    if (key.every((k, i) => k === this.lastColourKey[i])) return;
    this.lastColourKey = key;
    const n = this.xy.length >> 1;
    const c = this.currentColouring();
    this.colouring = c;
    const alpha = n > 200_000 ? 0.6 : n > 20_000 ? 0.8 : 0.9;
    if (!c || c.values.length !== n) {
      this.colours = new Uint8Array(4 * n);
      for (let i = 0; i < n; i++) {
        this.colours.set([78, 121, 167, Math.round(alpha * 255)], 4 * i);
      }
      if (c && c.values.length !== n)
        this.showError(
          `colouring ${JSON.stringify(s.colorBy)} has ${c.values.length} values for ${n} points`,
        );
    } else {
      this.colours = pointColours(c, new Set(s.hidden), alpha, this.colours);
    }
    this.grid = null;
    this.renderer.setColours(this.colours);
    this.updateSelection();
    this.requestDraw();
  }

  /** Slot (point order) of a sample index, or -1. */
  slotOfSample(sample: number): number {
    if (!this.index) return sample >= 0 && sample < this.xy.length >> 1 ? sample : -1;
    return this.slotOf.get(sample) ?? -1;
  }

  sampleOfSlot(slot: number): number {
    return this.index ? this.index[slot] : slot;
  }

  private updateSelection(): void {
    const s = this.state;
    const sel = s?.selected ?? [];
    const xy: number[] = [];
    const rgba: number[] = [];
    let missing = 0;
    for (const sample of sel) {
      const slot = this.slotOfSample(sample);
      if (slot < 0) {
        missing++;
        continue;
      }
      xy.push(this.shown[2 * slot], this.shown[2 * slot + 1]);
      rgba.push(
        this.colours[4 * slot],
        this.colours[4 * slot + 1],
        this.colours[4 * slot + 2],
        255,
      );
    }
    this.renderer.setSelection(new Float32Array(xy), new Uint8Array(rgba));
    this.selInfo.textContent = sel.length
      ? `${count(sel.length)} selected${missing ? ` (${count(missing)} not drawn)` : ""}`
      : "";
  }

  private renderLegend(): void {
    const s = this.state;
    const c = this.colouring;
    this.legend.replaceChildren();
    if (!s || !c) return;
    this.legend.append(el("div", "ls-title", s.colorBy));
    if (c.kind === "continuous") {
      const g = el("div", "ls-proj-bar-grad");
      g.style.background = gradientCss();
      const [lo, hi] = c.range ?? [0, 1];
      const row = el("div", "ls-row");
      row.style.justifyContent = "space-between";
      row.append(el("span", "ls-mono", shortNumber(lo)), el("span", "ls-mono", shortNumber(hi)));
      this.legend.append(g, row);
      return;
    }
    const counts = this.classCounts(c);
    const hidden = new Set(s.hidden);
    (c.classes ?? []).forEach((name, code) => {
      const item = el("div", `ls-item${hidden.has(name) ? " ls-off" : ""}`);
      item.dataset.cls = name;
      const sw = el("span", "ls-swatch");
      const rgb = classColour(c, code);
      sw.style.background = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
      item.append(sw, document.createTextNode(`${name} (${count(counts.get(code) ?? 0)})`));
      item.title = "click: hide/show this class";
      item.addEventListener("click", () => {
        const next = new Set(this.state?.hidden ?? []);
        if (next.has(name)) next.delete(name);
        else next.add(name);
        this.set("hidden", [...next]);
      });
      this.legend.append(item);
    });
  }

  private countsOf: { values: unknown; counts: Map<number, number> } | null = null;

  /** Points a class (once a colouring: the legend is redrawn on every update). */
  private classCounts(c: Colouring): Map<number, number> {
    if (this.countsOf?.values === c.values) return this.countsOf.counts;
    const m = c.classes?.length ?? 0;
    const dense = new Float64Array(m + 1);
    const counts = new Map<number, number>();
    for (let i = 0; i < c.values.length; i++) {
      const v = c.values[i];
      if (v >= 0 && v < m) dense[v]++;
      else counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    for (let k = 0; k < m; k++) counts.set(k, dense[k]);
    this.countsOf = { values: c.values, counts };
    return counts;
  }

  private renderStatus(): void {
    const st = this.state?.status ?? {};
    this.statusEl.replaceChildren();
    if (st.state === "running") {
      const bar = el("span", "ls-proj-progress");
      const fill = el("div");
      fill.style.width = `${Math.round((st.progress ?? 0) * 100)}%`;
      bar.append(fill);
      this.statusEl.append(
        document.createTextNode(
          `${st.text || st.method} — showing ${this.state?.points.method?.toUpperCase()} meanwhile `,
        ),
        bar,
      );
    } else if (st.state === "error") {
      this.statusEl.textContent = st.text ?? "";
      this.statusEl.className = "ls-error ls-proj-status";
      return;
    }
    this.statusEl.className = "ls-muted ls-proj-status";
  }

  private layout(): void {
    const w = Math.floor(this.plot.clientWidth);
    const h = this.state?.height ?? 420;
    if (w <= 0) return;
    if (w !== this.width || this.view.height !== h) {
      this.width = w;
      this.view = { ...this.view, width: w, height: h };
      this.renderer.resize(w, h);
      const dpr = window.devicePixelRatio || 1;
      this.overlay.width = Math.round(w * dpr);
      this.overlay.height = Math.round(h * dpr);
      this.overlay.style.width = `${w}px`;
      this.overlay.style.height = `${h}px`;
    }
    this.refit();
    this.requestDraw();
  }

  private refit(): void {
    if (this.fitted || this.width <= 0) return;
    const all = this.frames ?? this.shown;
    this.view = fitView(all, this.width, this.view.height);
    this.fitted = true;
    this.renderer.setPositions(this.shown);
    this.updateSelection();
  }

  private pointSize(): number {
    const ps = this.state?.pointSize ?? 0;
    return ps > 0 ? ps : autoPointSize(this.xy.length >> 1);
  }

  requestDraw(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.drawNow();
    });
  }

  /** Draw synchronously (benchmarks call this to time one frame). */
  drawNow(): void {
    if (this.width <= 0) return;
    this.renderer.draw(this.view, this.pointSize(), (this.state?.selected.length ?? 0) > 0);
    this.drawOverlay();
    if (this.pendingPaint) {
      const p = this.pendingPaint;
      this.pendingPaint = null;
      this.onPainted({ ...p, t: Date.now() });
    }
  }

  private drawOverlay(): void {
    const ctx = this.overlay.getContext("2d");
    if (!ctx) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.view.height);
    if (this.hoverSlot >= 0) {
      const [sx, sy] = toScreen(
        this.view,
        this.shown[2 * this.hoverSlot],
        this.shown[2 * this.hoverSlot + 1],
      );
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(sx, sy, this.pointSize() + 3, 0, 2 * Math.PI);
      ctx.stroke();
    }
    if (this.lasso.length >= 4) {
      ctx.strokeStyle = "rgba(25,118,210,0.9)";
      ctx.fillStyle = "rgba(25,118,210,0.12)";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (let i = 0; i + 1 < this.lasso.length; i += 2) {
        const [sx, sy] = toScreen(this.view, this.lasso[i], this.lasso[i + 1]);
        if (i === 0) ctx.moveTo(sx, sy);
        else ctx.lineTo(sx, sy);
      }
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
  }

  private visible = (slot: number): boolean => this.colours[4 * slot + 3] > 0;

  /** The drawn point under screen (sx, sy) within the point radius + 3 px, or -1. */
  pick(sx: number, sy: number): number {
    if (!this.grid) this.grid = new PointGrid(this.shown, this.visible);
    const [x, y] = toData(this.view, sx, sy);
    return this.grid.nearest(x, y, (this.pointSize() + 3) / this.view.k);
  }

  /** Screen position (CSS px within the plot) of a sample's point, for tests. */
  screenOf(sample: number): [number, number] | null {
    const slot = this.slotOfSample(sample);
    if (slot < 0) return null;
    return toScreen(this.view, this.shown[2 * slot], this.shown[2 * slot + 1]);
  }

  private bindPointer(): void {
    let drag: { x: number; y: number; view: ViewBox; moved: boolean; lasso: boolean } | null = null;
    const local = (e: PointerEvent | WheelEvent): [number, number] => {
      const r = this.plot.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    this.plot.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      const [x, y] = local(e);
      const lasso = this.lassoMode || e.shiftKey;
      drag = { x, y, view: this.view, moved: false, lasso };
      this.lasso = lasso ? [...toData(this.view, x, y)] : [];
      this.plot.setPointerCapture?.(e.pointerId);
    });
    this.plot.addEventListener("pointermove", (e) => {
      const [x, y] = local(e);
      if (drag) {
        if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) drag.moved = true;
        if (drag.lasso) {
          this.lasso.push(...toData(this.view, x, y));
        } else if (drag.moved) {
          const v = drag.view;
          this.view = { ...v, cx: v.cx - (x - drag.x) / v.k, cy: v.cy + (y - drag.y) / v.k };
          this.grid = this.grid; // the grid is in data units: still valid
        }
        this.hideCard();
        this.requestDraw();
        return;
      }
      this.hover(x, y);
    });
    const end = (e: PointerEvent) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      const [x, y] = local(e);
      if (d.lasso && d.moved) {
        const slots = lassoSelect(this.shown, this.lasso, this.visible);
        this.lasso = [];
        const samples = slots.map((s) => this.sampleOfSlot(s));
        this.set(
          "selected",
          e.altKey ? [...new Set([...(this.state?.selected ?? []), ...samples])] : samples,
        );
      } else if (!d.moved) {
        this.lasso = [];
        const slot = this.pick(x, y);
        const sel = this.state?.selected ?? [];
        if (slot < 0) {
          if (!e.shiftKey) this.set("selected", []);
        } else {
          const sample = this.sampleOfSlot(slot);
          if (e.shiftKey || e.metaKey || e.ctrlKey)
            this.set(
              "selected",
              sel.includes(sample) ? sel.filter((v) => v !== sample) : [...sel, sample],
            );
          else this.set("selected", [sample]);
        }
      }
      this.requestDraw();
    };
    this.plot.addEventListener("pointerup", end);
    this.plot.addEventListener("pointercancel", () => {
      drag = null;
      this.lasso = [];
      this.requestDraw();
    });
    this.plot.addEventListener("pointerleave", () => {
      if (!drag) this.hideCard();
    });
    this.plot.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const [x, y] = local(e);
        this.view = zoomAt(this.view, x, y, Math.exp(-e.deltaY * 0.0015));
        this.hideCard();
        this.requestDraw();
      },
      { passive: false },
    );
  }

  private hideCard(): void {
    if (this.hoverSlot >= 0) {
      this.hoverSlot = -1;
      this.requestDraw();
    }
    this.card.hidden = true;
  }

  private hover(x: number, y: number): void {
    const slot = this.pick(x, y);
    if (slot === this.hoverSlot) return;
    if (slot < 0) {
      this.hideCard();
      return;
    }
    this.hoverSlot = slot;
    this.requestDraw();
    const sample = this.sampleOfSlot(slot);
    this.card.hidden = false;
    this.card.style.left = `${Math.min(x + 14, Math.max(0, this.width - 270))}px`;
    this.card.style.top = `${Math.min(y + 14, Math.max(0, this.view.height - 160))}px`;
    this.card.dataset.sample = String(sample);
    // What the page holds is shown at once; the kernel's reply (the full input) replaces it.
    const baked = this.bakedCard(sample);
    this.fillCard(sample, baked.info, baked.body);
    if (this.offline) return;
    this.requester
      .request("sample", { index: sample }, { channel: "hover" })
      .then((r) => {
        if (this.hoverSlot !== slot) return;
        this.live = true;
        const info = r.content as unknown as SampleInfo;
        this.fillCard(sample, info, this.inputBody(info, r.buffers));
      })
      .catch((e) => {
        if (e instanceof Superseded || this.hoverSlot !== slot) return;
        if (e instanceof RequestError && e.name === "Timeout" && !this.live) this.setOffline();
        this.fillCard(
          sample,
          baked.info,
          baked.body ?? el("div", "ls-error", e instanceof Error ? e.message : String(e)),
        );
      });
  }

  /** What the page itself knows about a sample: the pushed arrays and the baked input. */
  private bakedCard(sample: number): { info: SampleInfo; body: HTMLElement | null } {
    const s = this.state;
    const info: SampleInfo = { index: sample };
    const slot = this.slotOfSample(sample);
    if (s && slot >= 0) {
      for (const key of ["label", "prediction", "probability", "loss"] as const) {
        const a = s.arrays[key];
        if (!a) continue;
        const v = (decodeArray(a.values).data as ArrayLike<number>)[slot];
        if (a.kind === "categorical") {
          const name = a.classes?.[v];
          if (key === "label") info.label_name = name;
          if (key === "prediction") info.prediction_name = name;
        } else info[key] = v;
      }
    }
    const t = s?.thumbs;
    const k = this.bakedSlot(sample);
    if (!t || k < 0) {
      return {
        info,
        body: el(
          "div",
          "ls-muted",
          this.offline ? "this input is not baked into the page: it needs a running kernel" : "…",
        ),
      };
    }
    if (t.kind === "tokens" && t.tokens) return { info, body: tokensEl(t.tokens[k]) };
    if (t.data) {
      const d = decodeArray(t.data);
      const per = d.shape.slice(1).reduce((a, b) => a * b, 1);
      const slice = (d.data as Uint8Array).subarray(k * per, (k + 1) * per);
      if (t.kind === "image")
        return { info, body: imageEl(slice, d.shape[1], d.shape[2], d.shape[3]) };
      return { info, body: stripEl(Float32Array.from(slice as unknown as ArrayLike<number>)) };
    }
    return { info, body: null };
  }

  private bakedOf: { thumbs: unknown; index: ArrayLike<number>; slot: Map<number, number> } | null =
    null;

  /** Sample indices whose inputs are baked into the page (decoded once a `_thumbs`). */
  private bakedIndex(): ArrayLike<number> {
    const t = this.state?.thumbs;
    if (this.bakedOf?.thumbs !== t) {
      const raw = t?.index;
      let index: ArrayLike<number> = [];
      if (Array.isArray(raw)) index = raw;
      else if (raw && "range" in raw) index = Int32Array.from({ length: raw.range }, (_, k) => k);
      else if (raw) index = decodeArray(raw).data as ArrayLike<number>;
      this.bakedOf = { thumbs: t, index, slot: new Map() };
    }
    return this.bakedOf?.index ?? [];
  }

  /** Row of `sample` in the baked inputs, or -1. */
  private bakedSlot(sample: number): number {
    const index = this.bakedIndex();
    const cache = this.bakedOf as { slot: Map<number, number> };
    if (cache.slot.size === 0 && index.length)
      for (let k = 0; k < index.length; k++) cache.slot.set(index[k], k);
    return cache.slot.get(sample) ?? -1;
  }

  private inputBody(info: SampleInfo, buffers: DataView[]): HTMLElement {
    const inp = info.input as
      | (SampleInfo["input"] & { image?: Payload; features?: Payload })
      | undefined;
    if (!inp) return el("div");
    if (inp.kind === "tokens") return tokensEl(inp.tokens ?? []);
    if (inp.kind === "image" && inp.image) {
      const d = decodeArray({ ...inp.image, buffer: buffers[0] });
      return imageEl(d.data as Uint8Array, d.shape[0], d.shape[1], d.shape[2]);
    }
    if (inp.kind === "features" && inp.features) {
      const d = decodeArray({ ...inp.features, buffer: buffers[0] });
      return stripEl(toF32(d));
    }
    return el("div", "ls-muted", inp.why ?? "no input");
  }

  private fillCard(sample: number, info: SampleInfo, body: HTMLElement | null): void {
    this.card.replaceChildren();
    if (body) this.card.append(body);
    const lines: string[] = [`sample ${count(sample)}`];
    const lab = info.label_name ?? (info.label !== undefined ? String(info.label) : undefined);
    const pred =
      info.prediction_name ?? (info.prediction !== undefined ? String(info.prediction) : undefined);
    if (lab !== undefined) lines.push(`label: ${lab}`);
    if (pred !== undefined)
      lines.push(
        `prediction: ${pred}${info.probability !== undefined ? ` (p = ${info.probability.toFixed(3)})` : ""}${lab !== undefined && pred !== undefined ? (lab === pred ? " ✓" : " ✗") : ""}`,
      );
    if (info.loss !== undefined) lines.push(`loss: ${shortNumber(info.loss)}`);
    for (const line of lines) this.card.append(el("div", "", line));
  }

  dispose(): void {
    cancelAnimationFrame(this.raf);
    cancelAnimationFrame(this.anim);
    this.resize?.disconnect();
    this.renderer.dispose();
  }
}

function imageEl(px: Uint8Array, h: number, w: number, c: number): HTMLElement {
  const canvas = el("canvas");
  canvas.width = w;
  canvas.height = h;
  const scale = Math.max(1, Math.floor(96 / Math.max(h, w)));
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
  const ctx = canvas.getContext("2d");
  if (ctx) {
    const img = ctx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      const r = px[i * c];
      img.data[4 * i] = r;
      img.data[4 * i + 1] = c >= 3 ? px[i * c + 1] : r;
      img.data[4 * i + 2] = c >= 3 ? px[i * c + 2] : r;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
  return canvas;
}

function tokensEl(tokens: string[]): HTMLElement {
  // Text, never HTML: tokens go in through textContent.
  return el("div", "ls-tokens", tokens.join(" "));
}

function stripEl(values: Float32Array): HTMLElement {
  const canvas = el("canvas");
  const n = values.length;
  canvas.width = Math.max(1, Math.min(n, 240));
  canvas.height = 1;
  canvas.style.width = "240px";
  canvas.style.height = "16px";
  const ctx = canvas.getContext("2d");
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (ctx && Number.isFinite(lo)) {
    const img = ctx.createImageData(canvas.width, 1);
    for (let i = 0; i < canvas.width; i++) {
      const v = values[Math.floor((i * n) / canvas.width)];
      const g = Math.round(((v - lo) / (hi - lo || 1)) * 255);
      img.data.set([g, g, g, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
  }
  return canvas;
}
