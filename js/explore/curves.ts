// The workspace's training curves: loss over steps (with each epoch's mean as a dot) and the
// per-epoch metrics, drawn on canvases from the timeline's `_curves` data, with the selected
// epoch marked. No widget library: it must work in the exported page and in a shadow DOM.
import { el } from "../core/dom";
import { shortNumber } from "../core/format";
import { decodeArray, type Payload } from "../core/wire";

export interface RawCurves {
  loss?: { x: Payload; y: Payload };
  points?: { x: Payload; y: Payload };
  metrics?: Record<string, Payload>;
  epochs?: Payload;
  /** Steps recorded when each epoch ended (the x of the metrics when `axis` is "step"). */
  steps?: Payload;
  /** "step": the run's epoch() is called every N steps, so the metrics are drawn over steps. */
  axis?: string;
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];

export const CURVES_CSS = `
.ls-curves { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 8px; margin-bottom: 6px; }
.ls-curves[hidden] { display: none; }
.ls-curves .ls-chart { position: relative; height: 150px; border: 1px solid var(--jp-border-color2, #e0e0e0); }
.ls-curves canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.ls-curves .ls-chart-note { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; }
.ls-curves .ls-chart-note[hidden] { display: none; }
.ls-curves .ls-legend { font-size: 11px; display: flex; flex-wrap: wrap; gap: 2px 10px; min-height: 14px; }
`;

type Series = {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color: string;
  dots?: boolean;
};

function values(p: Payload | undefined): Float64Array {
  if (!p) return new Float64Array(0);
  const d = decodeArray(p).data;
  return Float64Array.from(d as ArrayLike<number>);
}

/** Axis ticks: `n` round values across [lo, hi]; integers only when `integer`. */
export function ticks(lo: number, hi: number, n: number, integer: boolean): number[] {
  if (!(hi > lo)) return [lo];
  let step = 10 ** Math.floor(Math.log10((hi - lo) / n));
  for (const m of [1, 2, 5, 10]) {
    if ((hi - lo) / (step * m) <= n) {
      step *= m;
      break;
    }
  }
  if (integer) step = Math.max(1, Math.round(step));
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

class Chart {
  readonly root = el("div", "ls-chart-wrap");
  private readonly box = el("div", "ls-chart");
  private readonly canvas = el("canvas");
  private readonly note = el("div", "ls-chart-note ls-muted");
  private readonly legend = el("div", "ls-legend");
  private series: Series[] = [];
  private marker: number | null = null;

  constructor(
    readonly title: string,
    private xLabel: string,
    private readonly integerX: boolean,
  ) {
    this.box.append(this.canvas, this.note);
    this.root.append(el("div", "ls-title", title), this.box, this.legend);
    this.root.dataset.x = xLabel;
  }

  set(series: Series[], empty: string): void {
    this.series = series.filter((s) => s.x.length > 0);
    this.note.hidden = this.series.length > 0;
    this.note.textContent = empty;
    this.legend.replaceChildren(
      ...this.series.map((s) => {
        const item = el("span");
        const sw = el("span", "ls-swatch");
        sw.style.background = s.color;
        item.append(sw, document.createTextNode(s.name));
        return item;
      }),
    );
    this.draw();
  }

  /** The x axis' name (the metrics chart's: epoch, or step for an axis="step" run). */
  setXLabel(label: string): void {
    this.xLabel = label;
    this.root.dataset.x = label;
  }

  mark(x: number | null): void {
    this.marker = x;
    this.root.dataset.mark = x === null ? "" : String(x);
    this.draw();
  }

  draw(): void {
    const c = this.canvas;
    const w = Math.max(1, this.box.clientWidth);
    const h = Math.max(1, this.box.clientHeight);
    const dpr = globalThis.devicePixelRatio || 1;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    const ctx = c.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (this.series.length === 0) return;
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const s of this.series) {
      for (let i = 0; i < s.x.length; i++) {
        const y = s.y[i];
        if (!Number.isFinite(y)) continue;
        x0 = Math.min(x0, s.x[i]);
        x1 = Math.max(x1, s.x[i]);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
    if (!Number.isFinite(x0)) return;
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
    const pad = { l: 44, r: 8, t: 6, b: 22 };
    const px = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const py = (y: number) => h - pad.b - ((y - y0) / (y1 - y0)) * (h - pad.t - pad.b);
    const fg = getComputedStyle(this.root).color || "#444";
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = fg;
    ctx.strokeStyle = "rgba(128,128,128,0.35)";
    ctx.lineWidth = 1;
    const yt = ticks(y0, y1, 4, false);
    const digits = Math.max(...yt.map((v) => shortNumber(v).length));
    for (const v of yt) {
      const y = py(v);
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(w - pad.r, y);
      ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText(shortNumber(v).padStart(digits), pad.l - 4, y + 3);
    }
    ctx.textAlign = "center";
    for (const v of ticks(x0, x1, 6, this.integerX)) ctx.fillText(String(v), px(v), h - 8);
    ctx.textAlign = "right";
    ctx.fillText(this.xLabel, w - pad.r, h - 8 - 10);
    for (const s of this.series) {
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < s.x.length; i++) {
        const y = s.y[i];
        if (!Number.isFinite(y)) {
          pen = false;
          continue;
        }
        if (s.dots) {
          ctx.moveTo(px(s.x[i]) + 3, py(y));
          ctx.arc(px(s.x[i]), py(y), 3, 0, 2 * Math.PI);
        } else if (pen) ctx.lineTo(px(s.x[i]), py(y));
        else ctx.moveTo(px(s.x[i]), py(y));
        pen = true;
      }
      if (s.dots) ctx.fill();
      else ctx.stroke();
    }
    if (this.marker !== null) {
      ctx.strokeStyle = "#d62728";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(px(this.marker), pad.t);
      ctx.lineTo(px(this.marker), h - pad.b);
      ctx.stroke();
    }
  }
}

/** Loss over steps and metrics over epochs, with the selected epoch marked on both. */
export class CurvesView {
  readonly root = el("div", "ls-curves");
  private readonly loss = new Chart("loss", "step", true);
  private readonly metrics = new Chart("metrics", "epoch", true);
  /** Steps recorded when each epoch ended (its last step is one less). */
  private ends: number[] = [];
  private epochs: number[] = [];
  /** Where each epoch sits on the metrics chart: its number, or its step (axis "step"). */
  private metricX: number[] = [];

  constructor() {
    this.root.append(this.loss.root, this.metrics.root);
  }

  update(raw: RawCurves | undefined): void {
    const loss = raw?.loss;
    const pts = raw?.points;
    this.epochs = Array.from(values(raw?.epochs));
    const steps = Array.from(values(raw?.steps));
    this.ends = steps.length === this.epochs.length ? steps : [];
    this.loss.set(
      [
        { name: "loss (per step)", x: values(loss?.x), y: values(loss?.y), color: COLORS[0] },
        { name: "epoch mean", x: values(pts?.x), y: values(pts?.y), color: "#444", dots: true },
      ],
      "no loss recorded yet: rec.step(loss=...)",
    );
    const bySteps = raw?.axis === "step" && this.ends.length === this.epochs.length;
    this.metricX = bySteps ? this.ends : this.epochs;
    this.metrics.setXLabel(bySteps ? "step" : "epoch");
    const ex = Float64Array.from(this.metricX);
    this.metrics.set(
      Object.entries(raw?.metrics ?? {}).map(([name, y], i) => ({
        name,
        x: ex,
        y: values(y),
        color: COLORS[(i + 1) % COLORS.length],
      })),
      "no metrics yet: rec.epoch(accuracy=...)",
    );
  }

  /** Mark `epoch`: on the loss chart at its last step (as the single timeline's marker). */
  mark(epoch: number): void {
    const i = this.epochs.indexOf(epoch);
    this.loss.mark(i >= 0 && i < this.ends.length ? Math.max(0, this.ends[i] - 1) : null);
    this.metrics.mark(i >= 0 ? this.metricX[i] : null);
  }

  redraw(): void {
    this.loss.draw();
    this.metrics.draw();
  }
}
