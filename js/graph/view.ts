// The graph view: toolbar (search, fit, open/fold), a canvas with pan and zoom, hover tooltip,
// details panel, legends. Draws only what is in the viewport, skips text when it would be too
// small to read, and lays out per open group (scene.ts), so 10,000 nodes stay interactive.
import { cssRgb, lut } from "../core/colormap";
import { el, ensureStyle } from "../core/dom";
import { count, shortNumber } from "../core/format";
import { BASE_CSS } from "../core/theme";
import {
  decodeGraph,
  type GNode,
  type GraphData,
  nodeSelectPath,
  type RawGraph,
  tensorText,
} from "./data";
import { overlayText, renderDetails, type Selection } from "./details";
import { autoDepth, buildVisible, type FoldState, reveal, startFold, type Visible } from "./model";
import { HEAD, type Scene, SceneBuilder } from "./scene";
import { groupFirsts, type Matches, search } from "./search";
import { ACCENT, GRAPH_CSS, KINDS, type Kind, kindOfClass, kindOfNode, MATCH, TEXT } from "./style";

export interface GraphState {
  /** The compact graph, or its JSON text (how the kernel sends it: see widgets/graph.py). */
  graph: RawGraph | string;
  selected: string;
  search: string;
  overlay: Record<string, number | string>;
  overlayLabel: string;
  expanded: string[] | null;
  height: number;
}

export interface GraphCallbacks {
  select(path: string): void;
  search(query: string): void;
  expanded(paths: string[]): void;
  rendered(ms: number, nodes: number): void;
}

const FONT = "12px system-ui, sans-serif";
const BOLD = "600 12px system-ui, sans-serif";
const SMALL = "11px system-ui, sans-serif";
const REPEAT_PREFIX = "*";
// Work per task of a sliced layout ("Open all"): well under the 50 ms of a long task, so that
// a slice stays under 100 ms even when the machine is busy.
const LAYOUT_SLICE_MS = 25;

interface Hit {
  item: number;
  toggle: boolean;
}

interface OverlayScale {
  lo: number;
  hi: number;
  log: boolean;
}

export class GraphView {
  readonly root: HTMLDivElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private wrap: HTMLDivElement;
  private details: HTMLDivElement;
  /** The canvas width came from the page (not a guess made before the view was attached). */
  private measured = false;
  private tip: HTMLDivElement;
  private legend: HTMLDivElement;
  private kindsRow: HTMLDivElement;
  private title: HTMLSpanElement;
  private input: HTMLInputElement;
  private matchInfo: HTMLSpanElement;
  private error: HTMLDivElement;

  private data: GraphData | null = null;
  private raw: RawGraph | string | null = null;
  private builder: SceneBuilder | null = null;
  private fold: FoldState = { open: new Set([""]), unfolded: new Set() };
  private vis: Visible | null = null;
  private scene: Scene | null = null;
  private firsts: Float64Array = new Float64Array(0);
  private selected = "";
  private selection: Selection = { type: "none" };
  private matches: Matches | null = null;
  private matchCursor = -1;
  private current: { type: "node" | "group"; ref: number } | null = null;
  private overlay: Record<string, number | string> = {};
  private overlayLabel = "";
  private scale = 1;
  private tx = 0;
  private ty = 0;
  private width = 600;
  private height = 600;
  private frame = 0;
  private t0 = performance.now();
  private firstDone = false;
  private pointer: { x: number; y: number; tx: number; ty: number; moved: boolean } | null = null;
  private searchTimer = 0;
  private resize: ResizeObserver | null = null;
  private expandedEcho: string | null = null;
  private expands = 0;
  /** Bumped by every layout: a sliced "Open all" still running gives up when it changes. */
  private layoutJob = 0;
  private progress: HTMLSpanElement;

  constructor(private cb: GraphCallbacks) {
    ensureStyle("ls-base-css", BASE_CSS);
    ensureStyle("ls-graph-css", GRAPH_CSS);
    this.root = el("div", "ls-view ls-graph");
    const bar = el("div", "ls-row ls-graph-bar");
    this.title = el("span", "ls-title");
    this.input = el("input", "ls-graph-search");
    this.input.type = "search";
    this.input.placeholder = "search path or class, or /regex/";
    this.input.setAttribute("aria-label", "search the graph");
    this.matchInfo = el("span", "ls-muted ls-graph-matches");
    const fit = el("button", "ls-graph-fit", "Fit");
    fit.title = "fit the graph to the view";
    const openAll = el("button", "ls-graph-openall", "Open all");
    const foldAll = el("button", "ls-graph-foldall", "Fold");
    foldAll.title = "back to the starting depth";
    this.progress = el("span", "ls-muted ls-graph-progress");
    bar.append(this.title, this.input, this.matchInfo, fit, openAll, foldAll, this.progress);
    this.kindsRow = el("div", "ls-row ls-graph-kinds ls-muted");
    this.error = el("div", "ls-error");
    this.error.style.display = "none";
    const main = el("div", "ls-graph-main");
    this.wrap = el("div", "ls-graph-wrap");
    this.canvas = el("canvas", "ls-graph-canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "layer graph");
    this.tip = el("div", "ls-graph-tip");
    this.legend = el("div", "ls-graph-legend");
    this.legend.style.display = "none";
    this.wrap.append(this.canvas, this.tip, this.legend);
    this.details = el("div", "ls-graph-details");
    main.append(this.wrap, this.details);
    this.root.append(bar, this.kindsRow, this.error, main);
    this.ctx = this.canvas.getContext("2d")!;

    fit.addEventListener("click", () => this.fit());
    openAll.addEventListener("click", () => this.openAll());
    foldAll.addEventListener("click", () => this.resetFold());
    this.input.addEventListener("input", () => {
      window.clearTimeout(this.searchTimer);
      this.searchTimer = window.setTimeout(() => {
        this.setSearch(this.input.value);
        this.cb.search(this.input.value);
      }, 120);
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault();
      window.clearTimeout(this.searchTimer);
      if (!this.matches || this.matches.query !== this.input.value) {
        this.setSearch(this.input.value);
        this.cb.search(this.input.value);
      }
      this.nextMatch(e.shiftKey ? -1 : 1);
    });
    this.canvas.addEventListener("pointerdown", (e) => this.onDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.onMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.onUp(e));
    this.canvas.addEventListener("pointerleave", () => this.hideTip());
    this.canvas.addEventListener("dblclick", (e) => this.onDouble(e));
    this.canvas.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => {
        // Laid out before it was on the page (its width guessed): fit again once it is.
        const guessed = !this.measured;
        this.sizeCanvas();
        if (guessed && this.measured && this.scene) this.fitStart();
      });
      this.resize.observe(this.wrap);
    }
    Object.defineProperty(this.root, "lsGraph", { value: this.hook(), configurable: true });
  }

  dispose(): void {
    this.layoutJob++;
    this.resize?.disconnect();
    cancelAnimationFrame(this.frame);
    window.clearTimeout(this.searchTimer);
  }

  showError(message: string): void {
    this.error.textContent = message;
    this.error.style.display = message ? "" : "none";
  }

  // -- state from the model --

  update(s: GraphState): void {
    if (s.height !== this.height) {
      this.height = Math.max(150, s.height || 600);
      this.wrap.style.height = `${this.height}px`;
      this.details.style.height = `${this.height}px`;
    }
    let fresh = false;
    if (s.graph !== this.raw) {
      this.raw = s.graph;
      const raw = typeof s.graph === "string" ? (JSON.parse(s.graph) as RawGraph) : s.graph;
      if (!raw || !(raw as { schema?: string }).schema) {
        this.data = null;
        this.showError("this view has no graph: create it with ls.graph(model, *inputs)");
        return;
      }
      this.data = decodeGraph(raw);
      this.builder = new SceneBuilder(this.data, (t, bold) => this.measure(t, bold));
      this.firsts = groupFirsts(this.data);
      const sm = this.data.summary;
      this.title.textContent = `${String(sm.model ?? "model")} · ${count(Number(sm.nodes ?? 0))} nodes · ${count(Number(sm.params ?? 0))} params`;
      fresh = true;
    }
    const data = this.data;
    if (!data) return;
    const expandedKey = s.expanded === null ? "null" : JSON.stringify(s.expanded);
    if (fresh || expandedKey !== this.expandedEcho) {
      this.expandedEcho = expandedKey;
      this.fold = s.expanded === null ? this.autoFold() : this.foldFrom(s.expanded);
      if (!fresh) this.relayout(null);
    }
    if (s.overlay !== this.overlay || s.overlayLabel !== this.overlayLabel) {
      this.overlay = s.overlay ?? {};
      this.overlayLabel = s.overlayLabel ?? "";
      this.renderLegend();
      this.kindsRow.style.display = this.overlayScale() ? "none" : "";
    }
    if (fresh) {
      this.relayout(null);
      this.sizeCanvas(false);
      this.fitStart();
    }
    if (s.search !== (this.matches?.query ?? "")) {
      if (this.input.value !== s.search) this.input.value = s.search;
      this.setSearch(s.search);
    }
    if (fresh || s.selected !== this.selected) this.select(s.selected, fresh ? "init" : "python");
    this.draw();
  }

  private autoFold(): FoldState {
    const data = this.data!;
    return startFold(data, autoDepth(data));
  }

  private foldFrom(list: string[]): FoldState {
    const data = this.data!;
    const open = new Set<string>([""]);
    const unfolded = new Set<number>();
    for (const p of list) {
      if (p.startsWith(REPEAT_PREFIX)) {
        const r = data.repeatOf.get(p.slice(1));
        if (r !== undefined) unfolded.add(r);
      } else open.add(p);
    }
    return { open, unfolded };
  }

  private foldList(): string[] {
    const data = this.data!;
    const list = [...this.fold.open].filter((p) => p !== "");
    for (const r of this.fold.unfolded) list.push(REPEAT_PREFIX + data.repeats[r].paths[0]);
    return list;
  }

  private sendFold(): void {
    const list = this.foldList();
    this.expandedEcho = JSON.stringify(list);
    this.cb.expanded(list);
  }

  // -- layout --

  private measure(text: string, bold: boolean): number {
    this.ctx.font = bold ? BOLD : FONT;
    return this.ctx.measureText(text).width;
  }

  /** Rebuild what is drawn; keeps `anchor` (an item key) at the same place on screen. */
  private relayout(anchor: string | null, anchorAfter: string | null = anchor): number {
    const data = this.data!;
    const t = performance.now();
    this.layoutJob++;
    this.progress.textContent = "";
    let ax = 0;
    let ay = 0;
    let anchored = false;
    if (anchor && this.scene) {
      const i = this.scene.vis.items.findIndex((it) => it.key === anchor);
      if (i >= 0) {
        ax = this.scene.x[i] * this.scale + this.tx;
        ay = this.scene.y[i] * this.scale + this.ty;
        anchored = true;
      }
    }
    this.hideTip();
    this.vis = buildVisible(data, this.fold);
    this.scene = this.builder!.build(this.vis);
    if (anchored) {
      const i = this.vis.items.findIndex((it) => it.key === anchorAfter);
      if (i >= 0) {
        this.tx = ax - this.scene.x[i] * this.scale;
        this.ty = ay - this.scene.y[i] * this.scale;
      }
    }
    const ms = performance.now() - t;
    this.root.dataset.layoutMs = ms.toFixed(1);
    this.root.dataset.nodes = String(this.vis.leaves);
    this.root.dataset.items = String(this.vis.items.length);
    this.root.dataset.layout = "done";
    this.root.dataset.laidOut = String(this.scene.laidOut);
    this.renderKinds();
    return ms;
  }

  private sizeCanvas(redraw = true): void {
    this.measured = this.wrap.clientWidth > 0;
    const w = Math.max(200, Math.floor(this.wrap.clientWidth || 600));
    const dpr = window.devicePixelRatio || 1;
    this.width = w;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${this.height}px`;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(this.height * dpr);
    if (redraw) this.draw();
  }

  fit(most = 1.5): void {
    const s = this.scene;
    if (!s) return;
    const m = 16;
    this.scale = Math.min(most, (this.width - 2 * m) / s.width, (this.height - 2 * m) / s.height);
    this.tx = (this.width - s.width * this.scale) / 2;
    this.ty = (this.height - s.height * this.scale) / 2;
    this.draw();
  }

  /** Start view: the whole graph if its labels stay legible at that size (a 12-layer CNN in a
   * 600 px view: all of it, fc1 to the output included), else the top at a readable zoom. */
  private fitStart(): void {
    const s = this.scene!;
    const m = 16;
    const fitScale = Math.min(
      1.2,
      (this.width - 2 * m) / s.width,
      (this.height - 2 * m) / s.height,
    );
    if (fitScale >= 0.5) {
      this.fit(1.2);
      return;
    }
    this.scale = Math.max(0.75, Math.min(1, (this.width - 2 * m) / s.width));
    this.tx = (this.width - s.width * this.scale) / 2;
    this.ty = m;
    this.draw();
  }

  private centreOn(item: number): void {
    const s = this.scene!;
    if (this.scale < 0.6) this.scale = 0.9;
    this.tx = this.width / 2 - (s.x[item] + s.w[item] / 2) * this.scale;
    this.ty = this.height / 2 - (s.y[item] + Math.min(s.h[item], HEAD * 2) / 2) * this.scale;
  }

  // -- fold and unfold --

  toggle(item: number): void {
    const vis = this.vis!;
    const data = this.data!;
    const it = vis.items[item];
    const t = performance.now();
    if (it.kind === "repeat") this.fold.unfolded.add(it.ref);
    else if (it.kind === "group") {
      const path = data.groups[it.ref].path;
      if (it.open) {
        if (it.parent < 0) return;
        this.fold.open.delete(path);
        // folding a group folds its repeats back into "x N" blocks
        for (const r of data.repeats) if (r.parent === path) this.fold.unfolded.delete(r.index);
      } else this.fold.open.add(path);
    } else return;
    const anchor = it.kind === "repeat" ? `g${data.repeats[it.ref].paths[0]}` : it.key;
    this.relayout(it.key, anchor);
    this.drawNow();
    this.root.dataset.expandMs = (performance.now() - t).toFixed(1);
    this.root.dataset.expands = String(++this.expands);
    this.sendFold();
  }

  /** Every group open, every repeat unfolded. At 10,000 nodes that lays out ~1,000 groups
   * (0.2-0.6 s): the layout runs in slices of LAYOUT_SLICE_MS with the page free between them
   * (it paints the progress and takes input; no long task), the graph shown so far stays on
   * screen and the whole one replaces it when done. Any other fold change meanwhile wins. */
  private openAll(): void {
    const data = this.data!;
    const t = performance.now();
    const job = ++this.layoutJob;
    const fold: FoldState = { open: new Set(data.groups.map((g) => g.path)), unfolded: new Set() };
    for (const r of data.repeats) fold.unfolded.add(r.index);
    const vis = buildVisible(data, fold);
    // bench/graph_browser.py sets lsGraphSliceMs = Infinity to time the one-task layout as a
    // baseline in the same run.
    const slice = (globalThis as { lsGraphSliceMs?: number }).lsGraphSliceMs ?? LAYOUT_SLICE_MS;
    const steps = this.builder!.steps(vis, slice);
    this.root.dataset.layout = "pending";
    const next = () => {
      if (job !== this.layoutJob) return;
      const r = steps.next();
      if (!r.done) {
        this.progress.textContent = `laying out ${Math.round(r.value * 100)} %`;
        window.setTimeout(next, 0);
        return;
      }
      this.progress.textContent = "";
      this.hideTip();
      this.fold = fold;
      this.vis = vis;
      this.scene = r.value;
      this.root.dataset.layoutMs = (performance.now() - t).toFixed(1);
      this.root.dataset.nodes = String(vis.leaves);
      this.root.dataset.items = String(vis.items.length);
      this.root.dataset.layout = "done";
      this.root.dataset.laidOut = String(r.value.laidOut);
      this.renderKinds();
      this.fit();
      this.drawNow();
      this.root.dataset.expandMs = (performance.now() - t).toFixed(1);
      this.root.dataset.expands = String(++this.expands);
      this.sendFold();
    };
    next();
  }

  private resetFold(): void {
    this.fold = this.autoFold();
    this.relayout(null);
    this.fitStart();
    this.sendFold();
  }

  // -- selection --

  private resolve(path: string): Selection {
    const data = this.data!;
    if (path === "") return { type: "none" };
    const gi = data.groupByPath.get(path);
    if (gi !== undefined) return { type: "group", ref: gi };
    const ids = data.nodesByPath.get(path);
    if (ids) {
      const n = data.nodes[ids[0]];
      if (n.kind === "function")
        return { type: "node", ids: [ids.find((i) => data.nodes[i].call === 0) ?? ids[0]] };
      return { type: "node", ids };
    }
    const m = /^(.*)#(\d+)$/.exec(path);
    if (m) {
      const id = (data.nodesByPath.get(m[1]) ?? []).find(
        (i) => data.nodes[i].call === Number(m[2]),
      );
      if (id !== undefined) return { type: "node", ids: [id] };
    }
    return { type: "unknown", path };
  }

  /** Select by path. From Python: open the way to it and centre it. */
  select(path: string, why: "init" | "python" | "click"): void {
    const data = this.data;
    if (!data) return;
    if (why !== "click") this.hideTip();
    this.selected = path;
    this.root.dataset.selected = path;
    const sel = this.resolve(path);
    this.selection = sel;
    if (why !== "click" && (sel.type === "node" || sel.type === "group")) {
      const before = JSON.stringify(this.foldList());
      if (sel.type === "node") {
        const n = data.nodes[sel.ids[0]];
        reveal(data, this.fold, n.group, n.kind === "module" ? n.path : null);
      } else {
        const g = data.groups[sel.ref];
        reveal(data, this.fold, g.parent, g.path);
      }
      if (JSON.stringify(this.foldList()) !== before) {
        this.relayout(null);
        this.sendFold();
      }
      const item = this.itemOfSelection();
      if (item >= 0 && why === "python") this.centreOn(item);
    }
    this.renderDetails();
    this.draw();
  }

  private itemOfSelection(): number {
    const vis = this.vis!;
    const sel = this.selection;
    if (sel.type === "node") return vis.owner[sel.ids[0]];
    if (sel.type === "group") return vis.groupItem.get(sel.ref) ?? -1;
    if (sel.type === "repeat") return vis.repeatItem.get(sel.ref) ?? -1;
    return -1;
  }

  private pathOf(item: number): string {
    const data = this.data!;
    const it = this.vis!.items[item];
    if (it.kind === "node") return nodeSelectPath(data.nodes[it.ref]);
    if (it.kind === "group") return data.groups[it.ref].path;
    return data.repeats[it.ref].paths[0];
  }

  private renderDetails(): void {
    const data = this.data!;
    let sel = this.selection;
    // a folded repeat's member selected: describe the block
    const item = sel.type === "node" || sel.type === "group" ? this.itemOfSelection() : -1;
    let onToggle: ((l: string) => void) | null = null;
    let label = "";
    if (item >= 0) {
      const it = this.vis!.items[item];
      if (it.kind === "repeat" && sel.type === "group") sel = { type: "repeat", ref: it.ref };
      if (it.kind === "repeat") {
        onToggle = () => this.toggle(this.itemOfSelection());
        label = "Unfold";
      } else if (
        it.kind === "group" &&
        (sel.type === "group" || sel.type === "repeat") &&
        it.parent >= 0
      ) {
        onToggle = () => this.toggle(this.itemOfSelection());
        label = it.open ? "Fold" : "Open";
      }
    }
    renderDetails(this.details, data, sel, this.overlay, this.overlayLabel, onToggle, label);
  }

  // -- search --

  private setSearch(query: string): void {
    const data = this.data;
    if (!data) return;
    this.matches = search(data, query, this.firsts);
    this.matchCursor = -1;
    this.current = null;
    const m = this.matches;
    this.input.classList.toggle("ls-bad-query", !!m.error);
    this.matchInfo.textContent = m.error
      ? m.error
      : query.trim()
        ? `${count(m.targets.length)} match${m.targets.length === 1 ? "" : "es"}`
        : "";
    this.root.dataset.matches = String(m.targets.length);
    delete this.root.dataset.current;
    this.draw();
  }

  nextMatch(step: number): void {
    const m = this.matches;
    const data = this.data!;
    if (!m?.targets.length) return;
    const n = m.targets.length;
    this.matchCursor = (((this.matchCursor + step) % n) + n) % n;
    const t = m.targets[this.matchCursor];
    this.current = { type: t.type, ref: t.ref };
    const before = JSON.stringify(this.foldList());
    if (t.type === "node") {
      const node = data.nodes[t.ref];
      reveal(data, this.fold, node.group, node.kind === "module" ? node.path : null);
    } else reveal(data, this.fold, data.groups[t.ref].parent, data.groups[t.ref].path);
    if (JSON.stringify(this.foldList()) !== before) {
      this.relayout(null);
      this.sendFold();
    }
    const item =
      t.type === "node" ? this.vis!.owner[t.ref] : (this.vis!.groupItem.get(t.ref) ?? -1);
    if (item >= 0) this.centreOn(item);
    const path = t.type === "node" ? nodeSelectPath(data.nodes[t.ref]) : data.groups[t.ref].path;
    this.root.dataset.current = path;
    this.matchInfo.textContent = `${this.matchCursor + 1} of ${count(n)}`;
    this.draw();
  }

  private matchState(item: number): 0 | 1 | 2 {
    const m = this.matches;
    if (!m || (!m.nodes.size && !m.groups.size)) return 0;
    const it = this.vis!.items[item];
    const cur = this.current;
    if (cur) {
      if (it.kind === "node" && cur.type === "node" && cur.ref === it.ref) return 2;
      if (it.kind === "group" && cur.type === "group" && cur.ref === it.ref) return 2;
    }
    if (it.kind === "node") return m.nodes.has(it.ref) ? 1 : 0;
    if (it.kind === "group" && m.groups.has(it.ref)) return 1;
    return this.containsMatch[item] ? 1 : 0;
  }

  private containsMatch: Uint8Array = new Uint8Array(0);

  private computeContains(): void {
    const vis = this.vis!;
    const data = this.data!;
    const m = this.matches;
    this.containsMatch = new Uint8Array(vis.items.length);
    if (!m) return;
    for (const id of m.nodes) {
      const o = vis.owner[id];
      if (o >= 0 && vis.items[o].kind !== "node") this.containsMatch[o] = 1;
    }
    for (const g of m.groups) {
      // a matching group folded inside another item
      let it = vis.groupItem.get(g);
      if (it === undefined) {
        const first = data.groups[g].nodes[0];
        if (first !== undefined) it = vis.owner[first];
      }
      if (it !== undefined && it >= 0) this.containsMatch[it] = 1;
    }
  }

  // -- overlay --

  private overlayScale(): OverlayScale | null {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const v of Object.values(this.overlay))
      if (typeof v === "number" && Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    if (lo > hi) return null;
    const log = lo > 0 && hi / lo > 100;
    return { lo, hi, log };
  }

  private overlayColor(v: number | string | undefined, sc: OverlayScale): string | null {
    if (v === undefined) return null;
    if (typeof v !== "number") return "#ff00ff"; // NaN / Inf: their own colour
    const f = (x: number) => (sc.log ? Math.log10(x) : x);
    const span = f(sc.hi) - f(sc.lo);
    const t = span > 0 ? (f(v) - f(sc.lo)) / span : 0.5;
    const table = lut("viridis");
    const k = Math.max(0, Math.min(table.length / 3 - 1, Math.round(t * (table.length / 3 - 1))));
    return cssRgb([table[k * 3], table[k * 3 + 1], table[k * 3 + 2]]);
  }

  private renderLegend(): void {
    const sc = this.overlayScale();
    this.legend.replaceChildren();
    if (!sc) {
      // an overlay on its way (the workspace's weight change after the cell): its label says so
      const coming = this.overlayLabel.endsWith("…");
      this.legend.style.display = coming ? "" : "none";
      if (coming) this.legend.append(el("div", "ls-graph-legend-label", this.overlayLabel));
      return;
    }
    this.legend.style.display = "";
    this.legend.append(el("div", "ls-graph-legend-label", this.overlayLabel || "overlay"));
    const ramp = el("div", "ls-graph-ramp");
    const stops: string[] = [];
    const table = lut("viridis");
    for (let i = 0; i <= 8; i++) {
      const k = Math.round((i / 8) * (table.length / 3 - 1));
      stops.push(cssRgb([table[k * 3], table[k * 3 + 1], table[k * 3 + 2]]));
    }
    ramp.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    const ends = el("div", "ls-row ls-mono");
    ends.style.justifyContent = "space-between";
    ends.append(
      el("span", "", shortNumber(sc.lo)),
      el("span", "", sc.log ? "log" : ""),
      el("span", "", shortNumber(sc.hi)),
    );
    this.legend.append(ramp, ends);
  }

  private renderKinds(): void {
    const vis = this.vis!;
    const data = this.data!;
    const seen = new Map<string, Kind>();
    for (const it of vis.items) {
      if (it.open) continue;
      const k = this.kindOf(it.kind, it.ref, data);
      seen.set(k.name, k);
    }
    this.kindsRow.replaceChildren();
    for (const k of seen.values()) {
      const s = el("span");
      const sw = el("span", "ls-swatch");
      sw.style.background = k.fill;
      sw.style.borderColor = k.stroke;
      s.append(sw, document.createTextNode(k.name));
      this.kindsRow.append(s);
    }
  }

  private kindOf(kind: string, ref: number, data: GraphData): Kind {
    if (kind === "node") return kindOfNode(data.nodes[ref]);
    if (kind === "group") {
      const cls = data.groups[ref].cls;
      const k = kindOfClass(cls);
      return k === KINDS.module ? KINDS.group : k;
    }
    return KINDS.group;
  }

  // -- drawing --

  draw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.drawNow();
    });
  }

  drawNow(): void {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    const s = this.scene;
    const data = this.data;
    if (!s || !data) return;
    const tDraw = performance.now();
    const vis = s.vis;
    this.computeContains();
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    const cs = getComputedStyle(this.root);
    const bg = cs.backgroundColor || "#fff";
    const fg = cs.color || "#222";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = bg;
    ctx.fillRect(0, 0, this.width, this.height);
    const sc = this.scale;
    ctx.setTransform(dpr * sc, 0, 0, dpr * sc, dpr * this.tx, dpr * this.ty);
    const x0 = -this.tx / sc;
    const y0 = -this.ty / sc;
    const x1 = (this.width - this.tx) / sc;
    const y1 = (this.height - this.ty) / sc;
    const inView = (i: number) =>
      s.x[i] < x1 && s.x[i] + s.w[i] > x0 && s.y[i] < y1 && s.y[i] + s.h[i] > y0;
    const text = sc >= 0.45;
    const items = vis.items;
    const selItem = this.itemOfSelection();
    const selPath = this.selected;
    const isSelected = (i: number) => {
      if (i === selItem) return true;
      const it = items[i];
      return (
        it.kind === "node" &&
        selPath !== "" &&
        data.nodes[it.ref].kind === "module" &&
        data.nodes[it.ref].path === selPath
      );
    };

    // open group boxes
    ctx.lineWidth = Math.max(1, 1 / sc);
    for (let i = 1; i < items.length; i++) {
      const it = items[i];
      if (!it.open || !inView(i)) continue;
      ctx.globalAlpha = 0.035;
      ctx.fillStyle = fg;
      ctx.fillRect(s.x[i], s.y[i], s.w[i], s.h[i]);
      ctx.globalAlpha = 0.35;
      ctx.strokeStyle = fg;
      ctx.strokeRect(s.x[i], s.y[i], s.w[i], s.h[i]);
      ctx.globalAlpha = 1;
      const ms = this.matchState(i);
      if (isSelected(i) || ms) {
        ctx.strokeStyle = isSelected(i) ? ACCENT : MATCH;
        ctx.lineWidth = Math.max(2.5, 2 / sc);
        ctx.strokeRect(s.x[i], s.y[i], s.w[i], s.h[i]);
        ctx.lineWidth = Math.max(1, 1 / sc);
      }
      if (text && s.y[i] + HEAD > y0) {
        ctx.fillStyle = fg;
        ctx.font = BOLD;
        ctx.textBaseline = "middle";
        ctx.fillText("−", s.x[i] + 8, s.y[i] + 13);
        ctx.fillText(s.line1[i], s.x[i] + 22, s.y[i] + 13, s.w[i] - 28);
      }
    }

    // edges
    const selEdges: number[] = [];
    ctx.beginPath();
    const lw = Math.max(1.1, 0.8 / sc);
    let heads = 0;
    const arrows: number[] = [];
    s.paths.forEach((p, k) => {
      let bx0 = Number.POSITIVE_INFINITY;
      let bx1 = Number.NEGATIVE_INFINITY;
      let by0 = Number.POSITIVE_INFINITY;
      let by1 = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < p.length; j += 2) {
        bx0 = Math.min(bx0, p[j]);
        bx1 = Math.max(bx1, p[j]);
        by0 = Math.min(by0, p[j + 1]);
        by1 = Math.max(by1, p[j + 1]);
      }
      if (bx0 > x1 || bx1 < x0 || by0 > y1 || by1 < y0) return;
      const e = vis.edges[k];
      if (selItem >= 0 && (e.src === selItem || e.dst === selItem)) selEdges.push(k);
      if (sc < 0.08) {
        ctx.moveTo(p[0], p[1]);
        for (let j = 2; j < p.length; j += 2) ctx.lineTo(p[j], p[j + 1]);
      } else this.tracePath(p);
      if (sc > 0.3 && heads < 5000) {
        arrows.push(p[p.length - 2], p[p.length - 1]);
        heads++;
      }
    });
    ctx.strokeStyle = fg;
    ctx.globalAlpha = 0.5;
    ctx.lineWidth = lw;
    ctx.stroke();
    ctx.globalAlpha = 1;
    if (selEdges.length) {
      ctx.beginPath();
      for (const k of selEdges) this.tracePath(s.paths[k]);
      ctx.strokeStyle = ACCENT;
      ctx.lineWidth = lw * 2;
      ctx.stroke();
    }
    if (arrows.length) {
      ctx.beginPath();
      for (let j = 0; j < arrows.length; j += 2) {
        const ax = arrows[j];
        const ay = arrows[j + 1];
        ctx.moveTo(ax, ay);
        ctx.lineTo(ax - 3.5, ay - 6);
        ctx.lineTo(ax + 3.5, ay - 6);
        ctx.closePath();
      }
      ctx.fillStyle = fg;
      ctx.globalAlpha = 0.6;
      ctx.fill();
      ctx.globalAlpha = 1;
    }

    // leaves
    const osc = this.overlayScale();
    const hasOverlay = osc !== null;
    for (let i = 1; i < items.length; i++) {
      const it = items[i];
      if (it.open || !inView(i)) continue;
      const kind = this.kindOf(it.kind, it.ref, data);
      if (s.h[i] * sc < 4) {
        // too small to read: a plain block (fast at 10,000 nodes zoomed out)
        ctx.fillStyle = isSelected(i) ? ACCENT : this.matchState(i) ? MATCH : kind.stroke;
        ctx.fillRect(s.x[i], s.y[i], s.w[i], s.h[i]);
        continue;
      }
      let fill = kind.fill;
      let textColor = TEXT;
      if (hasOverlay) {
        const c = this.overlayColor(this.overlay[this.overlayKey(i)], osc);
        fill = c ?? "#e4e6e8";
        if (c) textColor = this.overlayTextColor(this.overlay[this.overlayKey(i)], osc);
      }
      const X = s.x[i];
      const Y = s.y[i];
      const W = s.w[i];
      const H = s.h[i];
      const node = it.kind === "node" ? data.nodes[it.ref] : null;
      const r = node && node.kind !== "module" ? H / 2 : 5;
      if (it.kind === "repeat") {
        for (const off of [8, 4]) {
          ctx.fillStyle = fill;
          ctx.strokeStyle = kind.stroke;
          this.roundRect(X + off, Y - off + 8, W - 8, H - 8, r);
          ctx.fill();
          ctx.stroke();
        }
      }
      const hy = it.kind === "repeat" ? Y + 8 : Y;
      const hh = it.kind === "repeat" ? H - 8 : H;
      const hw = it.kind === "repeat" ? W - 8 : W;
      ctx.fillStyle = fill;
      ctx.strokeStyle = kind.stroke;
      ctx.lineWidth = Math.max(1, 1 / sc);
      this.roundRect(X, hy, hw, hh, r);
      ctx.fill();
      ctx.stroke();
      const ms = this.matchState(i);
      if (ms) {
        ctx.strokeStyle = MATCH;
        ctx.lineWidth = ms === 2 ? Math.max(5, 3 / sc) : Math.max(3, 2 / sc);
        this.roundRect(X - 2, hy - 2, hw + 4, hh + 4, r + 2);
        ctx.stroke();
      }
      if (isSelected(i)) {
        ctx.strokeStyle = ACCENT;
        ctx.lineWidth = Math.max(3, 2 / sc);
        this.roundRect(X - 1, hy - 1, hw + 2, hh + 2, r + 1);
        ctx.stroke();
      }
      if (!text) continue;
      ctx.fillStyle = textColor;
      ctx.textBaseline = "middle";
      const toggle = it.kind !== "node";
      const tx = X + (toggle ? 24 : hw / 2);
      ctx.textAlign = toggle ? "left" : "center";
      const room = hw - (toggle ? 30 : 10);
      if (toggle) {
        ctx.font = BOLD;
        ctx.textAlign = "center";
        ctx.fillText("+", X + 12, hy + hh / 2);
        ctx.textAlign = "left";
      }
      if (s.line2[i]) {
        ctx.font = BOLD;
        ctx.fillText(s.line1[i], tx, hy + hh / 2 - 7, room);
        ctx.font = SMALL;
        ctx.globalAlpha = 0.8;
        ctx.fillText(s.line2[i], tx, hy + hh / 2 + 8, room);
        ctx.globalAlpha = 1;
      } else {
        ctx.font = node && node.kind !== "function" ? BOLD : FONT;
        ctx.fillText(s.line1[i], tx, hy + hh / 2 + 0.5, room);
      }
      ctx.textAlign = "left";
    }

    // edge labels: tensor shapes, where the gap below the source has room
    if (sc >= 0.7) {
      ctx.font = SMALL;
      ctx.textBaseline = "middle";
      ctx.textAlign = "center";
      let drawn = 0;
      const placed: number[] = [];
      for (let k = 0; k < s.paths.length && drawn < 400; k++) {
        const p = s.paths[k];
        const mx = (p[0] + p[2]) / 2;
        const my = (p[1] + p[3]) / 2;
        if (mx < x0 || mx > x1 || my < y0 || my > y1) continue;
        if ((p[3] - p[1]) * sc < 30) continue;
        const label = s.labels[k];
        const tw = this.measure(label, false) * (11 / 12) + 6;
        const lx = p[0] + (p[2] - p[0]) * 0.35;
        const ly = p[1] + (p[3] - p[1]) * 0.35;
        let clash = false;
        for (let j = 0; j < placed.length; j += 3)
          if (
            Math.abs(placed[j] - lx) < (placed[j + 2] + tw) / 2 &&
            Math.abs(placed[j + 1] - ly) < 13
          )
            clash = true;
        if (clash) continue;
        placed.push(lx, ly, tw);
        ctx.fillStyle = bg;
        ctx.globalAlpha = 0.85;
        ctx.fillRect(lx - tw / 2, ly - 7, tw, 14);
        ctx.globalAlpha = 0.85;
        ctx.fillStyle = fg;
        ctx.fillText(label, lx, ly);
        ctx.globalAlpha = 1;
        drawn++;
      }
      ctx.textAlign = "left";
    }
    this.root.dataset.scale = sc.toFixed(3);
    this.root.dataset.drawMs = (performance.now() - tDraw).toFixed(1);
    if (!this.firstDone) {
      this.firstDone = true;
      const ms = performance.now() - this.t0;
      this.root.dataset.renderMs = ms.toFixed(1);
      this.root.dataset.readyAt = performance.now().toFixed(1);
      this.root.dataset.ready = "1";
      this.cb.rendered(ms, vis.leaves);
    }
  }

  private overlayKey(i: number): string {
    const it = this.vis!.items[i];
    const data = this.data!;
    if (it.kind === "node") return data.nodes[it.ref].path;
    if (it.kind === "group") return data.groups[it.ref].path;
    return data.repeats[it.ref].paths[0];
  }

  private overlayTextColor(v: number | string | undefined, sc: OverlayScale): string {
    if (typeof v !== "number") return TEXT;
    const f = (x: number) => (sc.log ? Math.log10(x) : x);
    const span = f(sc.hi) - f(sc.lo);
    const t = span > 0 ? (f(v) - f(sc.lo)) / span : 0.5;
    return t < 0.55 ? "#ffffff" : TEXT; // viridis is dark below the middle
  }

  private tracePath(p: number[]): void {
    const ctx = this.ctx;
    ctx.moveTo(p[0], p[1]);
    for (let j = 2; j < p.length; j += 2) {
      const ax = p[j - 2];
      const ay = p[j - 1];
      const bx = p[j];
      const by = p[j + 1];
      if (ax === bx) ctx.lineTo(bx, by);
      else {
        const dy = Math.max(12, Math.abs(by - ay) / 2);
        ctx.bezierCurveTo(ax, ay + dy, bx, by - dy, bx, by);
      }
    }
  }

  private roundRect(x: number, y: number, w: number, h: number, r: number): void {
    const ctx = this.ctx;
    const rr = Math.min(r, w / 2, h / 2);
    ctx.beginPath();
    ctx.moveTo(x + rr, y);
    ctx.arcTo(x + w, y, x + w, y + h, rr);
    ctx.arcTo(x + w, y + h, x, y + h, rr);
    ctx.arcTo(x, y + h, x, y, rr);
    ctx.arcTo(x, y, x + w, y, rr);
    ctx.closePath();
  }

  // -- pointer --

  private local(e: MouseEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private hit(px: number, py: number): Hit | null {
    const s = this.scene;
    if (!s) return null;
    const wx = (px - this.tx) / this.scale;
    const wy = (py - this.ty) / this.scale;
    const items = s.vis.items;
    for (let i = items.length - 1; i >= 1; i--) {
      const it = items[i];
      if (wx < s.x[i] || wx > s.x[i] + s.w[i] || wy < s.y[i] || wy > s.y[i] + s.h[i]) continue;
      if (it.open) {
        if (wy <= s.y[i] + HEAD) return { item: i, toggle: wx <= s.x[i] + 20 };
        continue; // inside an open box but on no child: nothing
      }
      return { item: i, toggle: it.kind !== "node" && wx <= s.x[i] + 22 };
    }
    return null;
  }

  private onDown(e: PointerEvent): void {
    if (e.button !== 0) return;
    const [x, y] = this.local(e);
    this.pointer = { x, y, tx: this.tx, ty: this.ty, moved: false };
    this.canvas.setPointerCapture?.(e.pointerId);
  }

  private onMove(e: PointerEvent): void {
    const [x, y] = this.local(e);
    const p = this.pointer;
    if (p) {
      if (!p.moved && Math.hypot(x - p.x, y - p.y) > 3) {
        p.moved = true;
        this.canvas.classList.add("ls-panning");
        this.hideTip();
      }
      if (p.moved) {
        this.tx = p.tx + x - p.x;
        this.ty = p.ty + y - p.y;
        this.draw();
      }
      return;
    }
    const h = this.hit(x, y);
    if (h) this.showTip(h.item, x, y);
    else this.hideTip();
  }

  private onUp(e: PointerEvent): void {
    const p = this.pointer;
    this.pointer = null;
    this.canvas.classList.remove("ls-panning");
    if (!p || p.moved) return;
    const [x, y] = this.local(e);
    const h = this.hit(x, y);
    if (!h) return;
    if (h.toggle) {
      this.toggle(h.item);
      return;
    }
    const path = this.pathOf(h.item);
    const it = this.vis!.items[h.item];
    this.select(path, "click");
    if (it.kind === "repeat") {
      this.selection = { type: "repeat", ref: it.ref };
      this.renderDetails();
    }
    this.cb.select(path);
  }

  private onDouble(e: MouseEvent): void {
    const [x, y] = this.local(e);
    const h = this.hit(x, y);
    if (h && !h.toggle && this.vis!.items[h.item].kind !== "node") this.toggle(h.item);
  }

  private onWheel(e: WheelEvent): void {
    e.preventDefault();
    const [x, y] = this.local(e);
    const k = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
    const next = Math.max(0.01, Math.min(4, this.scale * k));
    this.tx = x - ((x - this.tx) * next) / this.scale;
    this.ty = y - ((y - this.ty) * next) / this.scale;
    this.scale = next;
    this.hideTip();
    this.draw();
  }

  private showTip(item: number, x: number, y: number): void {
    const data = this.data!;
    const it = this.vis!.items[item];
    const lines: string[] = [];
    const shapes = (ins: number[], outs: number[]) => {
      lines.push(`in:  ${ins.map((t) => tensorText(data.tensors[t])).join(", ") || "—"}`);
      lines.push(`out: ${outs.map((t) => tensorText(data.tensors[t])).join(", ") || "—"}`);
    };
    if (it.kind === "node") {
      const n: GNode = data.nodes[it.ref];
      lines.push(`${n.name}  ${n.path}`);
      shapes(n.ins, n.outs);
      if (n.kind === "module")
        lines.push(`params: ${count(n.params)}${n.calls > 1 ? ` · ${n.calls} calls` : ""}`);
    } else if (it.kind === "group") {
      const g = data.groups[it.ref];
      lines.push(`${g.cls}  ${g.path}`);
      if (g.calls[0]) shapes(g.calls[0][0], g.calls[0][1]);
      lines.push(`params: ${count(g.params)} · ${count(it.count)} nodes`);
    } else {
      const r = data.repeats[it.ref];
      lines.push(`${r.label}  ${r.paths[0]} … ${r.paths[r.paths.length - 1]}`);
      const gi = data.groupByPath.get(r.paths[0]);
      if (gi !== undefined && data.groups[gi].calls[0])
        shapes(data.groups[gi].calls[0][0], data.groups[gi].calls[0][1]);
      lines.push("click + to unfold");
    }
    const ov = this.overlay[this.overlayKey(item)];
    if (ov !== undefined && this.overlayLabel !== "parameters")
      lines.push(`${this.overlayLabel || "overlay"}: ${overlayText(ov)}`);
    this.tip.textContent = lines.join("\n");
    this.tip.style.display = "block";
    const left = Math.min(x + 14, Math.max(0, this.width - this.tip.offsetWidth - 4));
    const top =
      y + 16 + this.tip.offsetHeight > this.height ? y - this.tip.offsetHeight - 8 : y + 16;
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${Math.max(0, top)}px`;
  }

  private hideTip(): void {
    this.tip.style.display = "none";
  }

  // -- test and automation hook (root.lsGraph) --

  private hook() {
    return {
      /** drawn items with their rectangles in client (page) coordinates */
      items: (limit = 5000) => {
        const s = this.scene;
        if (!s) return [];
        const r = this.canvas.getBoundingClientRect();
        const out = [];
        for (let i = 1; i < s.vis.items.length && out.length < limit; i++) {
          const it = s.vis.items[i];
          out.push({
            key: it.key,
            kind: it.kind,
            open: it.open,
            path: this.pathOf(i),
            label: s.line1[i],
            x: r.left + this.tx + s.x[i] * this.scale,
            y: r.top + this.ty + s.y[i] * this.scale,
            w: s.w[i] * this.scale,
            h: (it.open ? HEAD : s.h[i]) * this.scale,
          });
        }
        return out;
      },
      toggle: (path: string) => {
        const s = this.scene;
        if (!s) return false;
        const i = s.vis.items.findIndex(
          (it, k) => k > 0 && it.kind !== "node" && this.pathOf(k) === path,
        );
        if (i < 0) return false;
        this.toggle(i);
        return true;
      },
      view: () => ({
        scale: this.scale,
        tx: this.tx,
        ty: this.ty,
        width: this.width,
        height: this.height,
      }),
      fit: () => this.fit(),
      centre: (path: string) => {
        const s = this.scene;
        if (!s) return false;
        const i = s.vis.items.findIndex((_, k) => k > 0 && this.pathOf(k) === path);
        if (i < 0) return false;
        this.scale = 1;
        this.centreOn(i);
        this.drawNow();
        return true;
      },
    };
  }
}
