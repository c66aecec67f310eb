// The units view: a sortable, filterable table of a layer's units (stats + sparkline histogram)
// and the selected unit's card: histogram, top examples (receptive-field crop beside the
// activation map, or tokens in context), quantile groups, incoming weights. Renders from its
// model's traits (see bind.ts) and keeps its CSS on its own root (shadow-DOM hosts).
import { chooseScale, paint } from "../core/colormap";
import { el } from "../core/dom";
import { count, shortNumber } from "../core/format";
import { RequestError, type Requester, Superseded } from "../core/request";
import { BASE_CSS } from "../core/theme";
import { type Decoded, decodeArray, type Payload } from "../core/wire";
import { FILTERS, SORTS, type UnitColumns, unitOrder } from "./table";

export const UNITS_CSS = `${BASE_CSS}
.ls-units [hidden] { display: none !important; }
.ls-units-bar { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; margin-bottom: 6px; }
.ls-units-bar select { font: inherit; }
.ls-units-main { display: flex; gap: 10px; align-items: flex-start; }
.ls-units-table { flex: 0 0 auto; overflow: auto; border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; }
.ls-units-table table { border-collapse: collapse; font-size: 12px; }
.ls-units-table th { position: sticky; top: 0; background: var(--jp-layout-color1, #fafafa); cursor: pointer; text-align: right; padding: 2px 6px; font-weight: 600; white-space: nowrap; }
.ls-units-table td { text-align: right; padding: 1px 6px; font-family: var(--jp-code-font-family, monospace); white-space: nowrap; }
.ls-units-table tr.ls-row-unit { cursor: pointer; }
.ls-units-table tr.ls-row-unit:hover { background: var(--jp-layout-color2, #eee); }
.ls-units-table tr.ls-sel { background: var(--jp-brand-color3, #bbdefb) !important; }
.ls-units-table td.ls-dead { color: var(--jp-error-color1, #d32f2f); font-weight: 600; }
.ls-units-card { flex: 1 1 auto; min-width: 260px; overflow: auto; }
.ls-units-card h4 { margin: 8px 0 4px 0; font-size: 13px; }
.ls-ex-grid { display: flex; flex-wrap: wrap; gap: 6px; }
.ls-ex { display: flex; flex-direction: column; align-items: center; font-size: 11px; }
.ls-ex canvas { image-rendering: pixelated; border: 1px solid var(--jp-border-color2, #e0e0e0); }
.ls-ex .ls-pair { display: flex; gap: 2px; }
.ls-group { display: flex; gap: 8px; align-items: center; margin: 2px 0; }
.ls-group-range { width: 140px; font-size: 11px; }
.ls-ctx { font-family: var(--jp-code-font-family, monospace); font-size: 12px; margin: 2px 0; }
.ls-ctx span { padding: 0 1px; border-radius: 2px; }
.ls-ctx span.ls-focus { outline: 2px solid #111; }
`;

export type Setter = (name: string, value: unknown) => void;

interface ExampleSet {
  kind: string;
  index: number[];
  values: number[];
  labels: (string | null)[];
  predictions: (string | null)[];
  positions?: number[][];
  images?: Payload;
  maps?: Payload;
  boxes?: number[][][];
  contexts?: { tokens: string[]; acts: (number | null)[]; focus: number }[];
  features?: Payload;
  why?: string;
}

export interface Card {
  layer: string;
  unit: number;
  hist: Payload;
  edges: [number, number];
  under: number;
  over: number;
  nonfinite: number;
  stats: Record<string, number | null>;
  top: ExampleSet;
  groups?: { lo: number; hi: number; count: number; examples: ExampleSet }[];
  groups_note?: string;
  weights?: { path: string; shape: number[]; data: Payload };
  weights_note?: string;
}

export interface UnitsState {
  table: {
    layer?: string;
    data_view?: boolean;
    units?: number;
    n?: number;
    shape?: number[];
    layout?: string;
    bounds?: number[] | null;
    stats?: Record<string, Payload>;
    spark?: Payload;
    notes?: string[];
  };
  card: Card | Record<string, never>;
  baked: { units?: number[]; cards?: Card[]; left_out?: number };
  unit: number;
  sort: string;
  filter: string;
  height: number;
  error: string;
}

const MAX_ROWS = 1000;

const f32 = (d: Decoded): Float32Array =>
  d.data instanceof Float32Array ? d.data : Float32Array.from(d.data as ArrayLike<number>);

export class UnitsPanel {
  readonly root: HTMLElement;
  private readonly title: HTMLElement;
  private readonly sortSel: HTMLSelectElement;
  private readonly filterSel: HTMLSelectElement;
  private readonly info: HTMLElement;
  private readonly tableBox: HTMLElement;
  private readonly cardBox: HTMLElement;
  private readonly errorEl: HTMLElement;
  private state: UnitsState | null = null;
  private lastTable: unknown = null;
  private cols: UnitColumns | null = null;
  private spark: Uint8Array | null = null;
  private bins = 0;
  private offline = false;
  private shownCard: unknown = null;

  constructor(
    private readonly requester: Requester,
    private readonly set: Setter,
  ) {
    this.root = el("div", "ls-view ls-units");
    const style = el("style");
    style.textContent = UNITS_CSS;
    this.root.append(style);
    const bar = el("div", "ls-units-bar");
    this.title = el("span", "ls-title");
    this.sortSel = el("select", "ls-units-sort");
    for (const [k, v] of Object.entries(SORTS)) {
      const o = el("option", "", v);
      o.value = k;
      this.sortSel.append(o);
    }
    this.sortSel.addEventListener("change", () => this.set("sort", this.sortSel.value));
    this.filterSel = el("select", "ls-units-filter");
    for (const [k, v] of Object.entries(FILTERS)) {
      const o = el("option", "", v);
      o.value = k;
      this.filterSel.append(o);
    }
    this.filterSel.addEventListener("change", () => this.set("filter", this.filterSel.value));
    const l1 = el("label", "", "sort ");
    l1.append(this.sortSel);
    const l2 = el("label", "", "show ");
    l2.append(this.filterSel);
    this.info = el("span", "ls-muted ls-units-info");
    bar.append(this.title, l1, l2, this.info);
    const main = el("div", "ls-units-main");
    this.tableBox = el("div", "ls-units-table");
    this.cardBox = el("div", "ls-units-card");
    main.append(this.tableBox, this.cardBox);
    this.errorEl = el("div", "ls-error");
    this.errorEl.hidden = true;
    this.root.append(bar, main, this.errorEl);
  }

  setOffline(): void {
    this.offline = true;
    if (this.state) this.renderCard();
  }

  setOnline(): void {
    this.offline = false;
    if (this.state) this.renderCard();
  }

  showError(text: string): void {
    this.errorEl.hidden = !text;
    this.errorEl.textContent = text;
  }

  update(s: UnitsState): void {
    this.state = s;
    const t = s.table;
    if (t !== this.lastTable && t.stats) {
      this.lastTable = t;
      const st = t.stats;
      this.cols = {
        mean: f32(decodeArray(st.mean)),
        std: f32(decodeArray(st.std)),
        max: f32(decodeArray(st.max)),
        frac_zero: f32(decodeArray(st.frac_zero)),
        frac_saturated: f32(decodeArray(st.frac_saturated)),
        nonfinite: decodeArray(st.nonfinite).data as Int32Array,
      };
      if (t.spark) {
        const d = decodeArray(t.spark);
        this.spark = d.data as Uint8Array;
        this.bins = d.shape[1];
      }
    }
    const what = t.data_view ? "feature" : "unit";
    this.title.textContent = `${t.layer ?? ""} · ${count(t.units ?? 0)} ${what}s · ${count(t.n ?? 0)} samples`;
    this.sortSel.value = s.sort;
    this.filterSel.value = s.filter;
    this.tableBox.style.maxHeight = `${s.height}px`;
    this.cardBox.style.maxHeight = `${s.height}px`;
    this.renderTable();
    this.renderCard();
  }

  private renderTable(): void {
    const s = this.state;
    const c = this.cols;
    if (!s || !c) return;
    const n = s.table.units ?? 0;
    const order = unitOrder(c, n, s.sort, s.filter);
    const shown = order.slice(0, MAX_ROWS);
    const notes = [...(s.table.notes ?? [])];
    const sat = s.table.bounds ? "" : " · saturation: not applicable (unbounded activation)";
    this.info.textContent = `${count(order.length)} of ${count(n)} shown${
      order.length > MAX_ROWS
        ? ` (first ${count(MAX_ROWS)} rows: filter or sort to see others)`
        : ""
    }${sat}${notes.length ? ` · ${notes.join(" · ")}` : ""}`;
    const table = el("table");
    const head = el("tr");
    const columns: [string, string][] = [
      ["index", "#"],
      ["mean", "mean"],
      ["std", "std"],
      ["max", "max"],
      ["dead", "zeros"],
      ["saturated", "saturated"],
      ["nonfinite", "NaN/Inf"],
    ];
    for (const [key, label] of columns) {
      const th = el("th", "", label + (s.sort === key ? " ▾" : ""));
      th.title = `sort by ${label}`;
      th.addEventListener("click", () => this.set("sort", key));
      head.append(th);
    }
    head.append(el("th", "", "histogram"));
    table.append(head);
    const pct = (v: number) => (Number.isNaN(v) ? "—" : `${(v * 100).toFixed(1)}%`);
    for (const u of shown) {
      const tr = el("tr", `ls-row-unit${u === s.unit ? " ls-sel" : ""}`);
      tr.dataset.unit = String(u);
      const dead = c.frac_zero[u] >= 0.99;
      const cells = [
        String(u),
        shortNumber(c.mean[u]),
        shortNumber(c.std[u]),
        shortNumber(c.max[u]),
        pct(c.frac_zero[u]),
        pct(c.frac_saturated[u]),
        String(c.nonfinite[u]),
      ];
      cells.forEach((text, k) => {
        const td = el("td", k === 4 && dead ? "ls-dead" : "", text);
        tr.append(td);
      });
      const td = el("td");
      td.append(this.sparkline(u));
      tr.append(td);
      tr.addEventListener("click", () => this.set("unit", u));
      table.append(tr);
    }
    this.tableBox.replaceChildren(table);
  }

  private sparkline(u: number): HTMLCanvasElement {
    const cv = el("canvas");
    cv.width = 60;
    cv.height = 14;
    const ctx = cv.getContext("2d");
    if (ctx && this.spark && this.bins) {
      ctx.fillStyle = "#4e79a7";
      const w = 60 / this.bins;
      for (let b = 0; b < this.bins; b++) {
        const h = (this.spark[u * this.bins + b] / 255) * 14;
        if (h > 0) ctx.fillRect(b * w, 14 - Math.max(1, h), Math.max(1, w - 0.2), Math.max(1, h));
      }
    }
    return cv;
  }

  private renderCard(): void {
    const s = this.state;
    if (!s) return;
    let card: Card | undefined =
      (s.card as Card).unit === s.unit && (s.card as Card).layer !== undefined
        ? (s.card as Card)
        : undefined;
    if (!card) {
      const k = s.baked.units?.indexOf(s.unit) ?? -1;
      if (k >= 0) card = s.baked.cards?.[k];
    }
    if (card === this.shownCard && card) return;
    this.shownCard = card;
    this.cardBox.replaceChildren();
    if (!card) {
      this.cardBox.append(
        el(
          "div",
          "ls-empty",
          this.offline
            ? `unit ${s.unit}'s examples are not baked into this page (${count(s.baked.left_out ?? 0)} units left out for size): they need a running kernel`
            : `loading unit ${s.unit} …`,
        ),
      );
      if (!this.offline) this.fetchCard(s.unit);
      return;
    }
    this.cardBox.dataset.unit = String(card.unit);
    const what = s.table.data_view ? "feature" : "unit";
    this.cardBox.append(el("div", "ls-title", `${what} ${card.unit} of ${s.table.layer}`));
    const st = card.stats;
    this.cardBox.append(
      el(
        "div",
        "ls-muted",
        `mean ${shortNumber(st.mean)} · std ${shortNumber(st.std)} · min ${shortNumber(st.min)} · max ${shortNumber(st.max)} · zeros ${((st.frac_zero ?? 0) * 100).toFixed(1)}%${card.nonfinite ? ` · ${count(card.nonfinite)} NaN/Inf` : ""}`,
      ),
    );
    this.cardBox.append(el("h4", "", "activation histogram (all positions, all samples)"));
    this.cardBox.append(histogram(card));
    const topTitle = s.table.data_view
      ? `largest values (top ${card.top.index.length})`
      : `top ${card.top.index.length} examples`;
    this.cardBox.append(el("h4", "", topTitle));
    this.cardBox.append(examples(card.top, true));
    if (card.groups) {
      this.cardBox.append(el("h4", "", "quantile groups (by each sample's largest value)"));
      if (card.groups_note) this.cardBox.append(el("div", "ls-muted", card.groups_note));
      for (const g of [...card.groups].reverse()) {
        const row = el("div", "ls-group");
        row.append(
          el(
            "div",
            "ls-group-range ls-muted",
            `${shortNumber(g.lo)} … ${shortNumber(g.hi)} (${count(g.count)})`,
          ),
          examples(g.examples, false),
        );
        this.cardBox.append(row);
      }
    } else {
      this.cardBox.append(
        el(
          "div",
          "ls-muted",
          "quantile groups are not baked into this page: they need a running kernel",
        ),
      );
    }
    if (card.weights) {
      this.cardBox.append(
        el("h4", "", `incoming weights ${card.weights.path} (${card.weights.shape.join(" x ")})`),
      );
      this.cardBox.append(weightsEl(card.weights.data));
    }
    if (card.weights_note) this.cardBox.append(el("div", "ls-muted", card.weights_note));
  }

  private fetchCard(unit: number): void {
    this.requester
      .request("card", { unit }, { channel: "card" })
      .then((r) => {
        const card = (r.content as { card: Card }).card;
        if (this.state && this.state.unit === unit) {
          this.state = { ...this.state, card };
          this.shownCard = null;
          this.renderCard();
        }
      })
      .catch((e) => {
        if (e instanceof Superseded) return;
        if (e instanceof RequestError && e.name === "Timeout") this.offline = true;
        this.shownCard = null;
        this.cardBox.replaceChildren(
          el("div", "ls-error", e instanceof Error ? e.message : String(e)),
        );
      });
  }

  dispose(): void {}
}

function histogram(card: Card): HTMLElement {
  const counts = decodeArray(card.hist).data as Int32Array;
  const cv = el("canvas");
  cv.width = 300;
  cv.height = 70;
  const ctx = cv.getContext("2d");
  // The bins are fixed per layer; this unit may use a few of them: show the used span only.
  let first = counts.findIndex((c) => c > 0);
  let last = counts.length - 1;
  while (last > 0 && counts[last] === 0) last--;
  if (first < 0) {
    first = 0;
    last = counts.length - 1;
  }
  const used = last - first + 1;
  let peak = 0;
  for (const c of counts) peak = Math.max(peak, c);
  if (ctx && peak > 0) {
    ctx.fillStyle = "#4e79a7";
    const w = 300 / used;
    for (let b = first; b <= last; b++) {
      const h = (counts[b] / peak) * 66;
      if (counts[b] > 0)
        ctx.fillRect((b - first) * w, 70 - Math.max(1, h), Math.max(1, w - 0.5), Math.max(1, h));
    }
  }
  const step = (card.edges[1] - card.edges[0]) / counts.length;
  const box = el("div");
  const axis = el("div", "ls-row ls-muted");
  axis.style.justifyContent = "space-between";
  axis.style.width = "300px";
  axis.append(
    el("span", "ls-mono", shortNumber(card.edges[0] + first * step)),
    el("span", "ls-mono", shortNumber(card.edges[0] + (last + 1) * step)),
  );
  box.append(cv, axis);
  if (card.under || card.over)
    box.append(
      el("div", "ls-muted", `${count(card.under)} below, ${count(card.over)} above the bins`),
    );
  return box;
}

function imageCanvas(
  px: Uint8Array,
  h: number,
  w: number,
  c: number,
  size: number,
  box?: number[][],
): HTMLCanvasElement {
  const r0 = box ? box[0][0] : 0;
  const r1 = box ? box[0][1] : h;
  const c0 = box ? box[1][0] : 0;
  const c1 = box ? box[1][1] : w;
  const cv = el("canvas");
  cv.width = c1 - c0;
  cv.height = r1 - r0;
  const scale = size / Math.max(cv.width, cv.height);
  cv.style.width = `${Math.round(cv.width * scale)}px`;
  cv.style.height = `${Math.round(cv.height * scale)}px`;
  const ctx = cv.getContext("2d");
  if (ctx) {
    const img = ctx.createImageData(cv.width, cv.height);
    for (let y = r0; y < r1; y++)
      for (let x = c0; x < c1; x++) {
        const i = y * w + x;
        const o = 4 * ((y - r0) * cv.width + (x - c0));
        img.data[o] = px[i * c];
        img.data[o + 1] = c >= 3 ? px[i * c + 1] : px[i * c];
        img.data[o + 2] = c >= 3 ? px[i * c + 2] : px[i * c];
        img.data[o + 3] = 255;
      }
    ctx.putImageData(img, 0, 0);
  }
  return cv;
}

function mapCanvas(codes: Uint8Array, h: number, w: number, size: number): HTMLCanvasElement {
  const cv = el("canvas");
  cv.width = w;
  cv.height = h;
  const scale = size / Math.max(w, h);
  cv.style.width = `${Math.round(w * scale)}px`;
  cv.style.height = `${Math.round(h * scale)}px`;
  const ctx = cv.getContext("2d");
  if (ctx) {
    const img = ctx.createImageData(w, h);
    paint(codes, { map: "magma", lo: 0, hi: 255, diverging: false }, img.data);
    ctx.putImageData(img, 0, 0);
  }
  return cv;
}

function examples(ex: ExampleSet, big: boolean): HTMLElement {
  const grid = el("div", "ls-ex-grid");
  const size = big ? 56 : 32;
  if (ex.kind === "none") {
    grid.append(el("span", "ls-muted", ex.why ?? "no examples"));
    return grid;
  }
  const imgs = ex.images ? decodeArray(ex.images) : null;
  const maps = ex.maps ? decodeArray(ex.maps) : null;
  const feats = ex.features ? decodeArray(ex.features) : null;
  ex.index.forEach((sample, k) => {
    const cell = el("div", "ls-ex");
    cell.dataset.sample = String(sample);
    if (imgs) {
      const [, h, w, c] = imgs.shape;
      const px = (imgs.data as Uint8Array).subarray(k * h * w * c, (k + 1) * h * w * c);
      const pair = el("div", "ls-pair");
      const crop = imageCanvas(px, h, w, c, size, ex.boxes?.[k]);
      crop.className = "ls-crop";
      crop.title = ex.boxes
        ? `receptive field rows ${ex.boxes[k][0].join("–")}, cols ${ex.boxes[k][1].join("–")}`
        : "input";
      pair.append(crop);
      if (maps && big) {
        const [, mh, mw] = maps.shape;
        const m = mapCanvas(
          (maps.data as Uint8Array).subarray(k * mh * mw, (k + 1) * mh * mw),
          mh,
          mw,
          size,
        );
        m.className = "ls-map";
        m.title = "the unit's activation over the whole input";
        pair.append(m);
      }
      cell.append(pair);
    } else if (ex.contexts) {
      const c = ex.contexts[k];
      const line = el("div", "ls-ctx");
      let hi = 0;
      for (const a of c.acts) if (a !== null) hi = Math.max(hi, Math.abs(a));
      c.tokens.forEach((tok, j) => {
        const span = el("span", j === c.focus ? "ls-focus" : "", tok);
        const a = c.acts[j];
        const t = a === null || hi === 0 ? 0 : Math.max(0, a) / hi;
        span.style.background = `rgba(242, 142, 43, ${t.toFixed(2)})`;
        span.title = a === null ? "NaN" : shortNumber(a);
        line.append(span, document.createTextNode(" "));
      });
      cell.append(line);
      cell.style.alignItems = "flex-start";
      grid.style.flexDirection = "column";
    } else if (feats) {
      const d = feats.shape[1];
      const row = Float32Array.from(feats.data as ArrayLike<number> as ArrayLike<number>).subarray(
        k * d,
        (k + 1) * d,
      );
      const cv = el("canvas");
      cv.width = d;
      cv.height = 1;
      cv.style.width = `${size * 2}px`;
      cv.style.height = "10px";
      const ctx = cv.getContext("2d");
      if (ctx) {
        const img = ctx.createImageData(d, 1);
        paint(
          row,
          chooseScale({ min: Math.min(...row), max: Math.max(...row) }, "auto", null, null),
          img.data,
        );
        ctx.putImageData(img, 0, 0);
      }
      cell.append(cv);
    }
    const lab = ex.labels[k];
    const pred = ex.predictions[k];
    cell.append(el("span", "ls-mono", shortNumber(ex.values[k])));
    if (big)
      cell.append(
        el(
          "span",
          "ls-muted",
          `#${sample}${lab !== null ? ` y=${lab}` : ""}${pred !== null && pred !== lab ? ` ŷ=${pred}` : ""}`,
        ),
      );
    grid.append(cell);
  });
  return grid;
}

function weightsEl(p: Payload): HTMLElement {
  const d = decodeArray(p);
  const [h, w] = d.shape.length === 2 ? d.shape : [1, d.shape[0]];
  const v = f32(d);
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    if (!Number.isFinite(x)) continue;
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const cv = el("canvas");
  cv.width = w;
  cv.height = h;
  const scale = Math.max(1, Math.floor(Math.min(300 / w, 160 / h)));
  cv.style.width = `${w * scale}px`;
  cv.style.height = `${h * scale}px`;
  cv.style.imageRendering = "pixelated";
  const ctx = cv.getContext("2d");
  const scaleC = chooseScale(
    { min: Number.isFinite(lo) ? lo : 0, max: Number.isFinite(hi) ? hi : 0 },
    "auto",
    null,
    null,
  );
  if (ctx) {
    const img = ctx.createImageData(w, h);
    paint(v, scaleC, img.data);
    ctx.putImageData(img, 0, 0);
  }
  const box = el("div");
  const legend = el(
    "div",
    "ls-muted ls-mono",
    `${shortNumber(scaleC.lo)} (blue) … ${shortNumber(scaleC.hi)} (red) · rows: inputs, columns: kernel positions`,
  );
  box.append(cv, legend);
  return box;
}
