// Sizes, per-group layouts (cached: opening a group lays out that group and re-places its
// ancestors only) and absolute positions of everything drawn, plus each edge's route.
// Text widths come from a callback, so this runs without a DOM in tests.
import { type GraphData, shapeText } from "./data";
import { type LayoutResult, layered } from "./layout";
import { IN, OUT, type Visible } from "./model";

export const PAD = 12;
export const HEAD = 26;
const DUMMY = 6;

export type Measure = (text: string, bold: boolean) => number;

export interface Scene {
  vis: Visible;
  x: Float64Array;
  y: Float64Array;
  w: Float64Array;
  h: Float64Array;
  line1: string[];
  line2: string[];
  /** per visible edge: [x0, y0, ..., xn, yn] from the source's bottom to the target's top */
  paths: number[][];
  labels: string[];
  width: number;
  height: number;
  /** layouts that were computed (not cached) for this scene */
  laidOut: number;
}

interface Cached {
  sig: number;
  res: LayoutResult;
  local: Map<number, number>;
  edgeIndex: Map<number, number>;
  inIdx: number;
  outIdx: number;
}

function last(path: string): string {
  const i = path.lastIndexOf(".");
  return i < 0 ? path : path.slice(i + 1);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}

export class SceneBuilder {
  private cache = new Map<string, Cached>();
  private widths = new Map<string, number>();
  /** a leaf's labels and size never change (a folded group's node count included) */
  private leaves = new Map<number, { l1: string; l2: string; w: number; h: number }>();

  constructor(
    private data: GraphData,
    private measure: Measure,
  ) {}

  private tw(text: string, bold: boolean): number {
    const k = (bold ? "b" : "r") + text;
    let w = this.widths.get(k);
    if (w === undefined) {
      w = this.measure(text, bold);
      this.widths.set(k, w);
    }
    return w;
  }

  build(vis: Visible): Scene {
    const steps = this.steps(vis);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** `build` in slices: yields (the share of group layouts done, 0..1) whenever `sliceMs` of
   * work have passed since the last yield, so that a caller can let the page paint and take
   * input between slices ("Open all" at 10,000 nodes lays out ~1,000 groups); returns the scene.
   * The layouts a slice computed are cached, so a run given up half way is not wasted. */
  *steps(vis: Visible, sliceMs = Number.POSITIVE_INFINITY): Generator<number, Scene, void> {
    const { data } = this;
    let t0 = performance.now();
    const due = () => performance.now() - t0 > sliceMs;
    const items = vis.items;
    const n = items.length;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    const w = new Float64Array(n);
    const h = new Float64Array(n);
    const line1: string[] = new Array(n).fill("");
    const line2: string[] = new Array(n).fill("");
    const layouts = new Map<number, Cached>();
    // edge key from stable uids (IN/OUT are -1/-2), so cached layouts outlive item indices
    const uidOf = (a: number) => (a < 0 ? a : items[a].uid);
    const ekey = (a: number, b: number) => (uidOf(a) + 2) * 4e6 + uidOf(b) + 2;
    let laidOut = 0;

    const leaf = (i: number) => {
      const it = items[i];
      const hit = this.leaves.get(it.uid);
      if (hit) {
        line1[i] = hit.l1;
        line2[i] = hit.l2;
        w[i] = hit.w;
        h[i] = hit.h;
        return;
      }
      leafNew(i);
      this.leaves.set(it.uid, { l1: line1[i], l2: line2[i], w: w[i], h: h[i] });
    };
    const leafNew = (i: number) => {
      const it = items[i];
      if (it.kind === "node") {
        const node = data.nodes[it.ref];
        if (node.kind === "module") {
          line1[i] = node.name;
          line2[i] = last(node.path) + (node.calls > 1 ? ` · call ${node.call + 1}` : "");
          w[i] = clamp(Math.max(this.tw(line1[i], true), this.tw(line2[i], false)) + 20, 64, 240);
          h[i] = 38;
        } else {
          line1[i] = node.kind === "function" && node.inplace ? node.name : node.name;
          w[i] = clamp(this.tw(line1[i], node.kind !== "function") + 22, 40, 240);
          h[i] = node.kind === "function" ? 24 : 28;
        }
      } else if (it.kind === "group") {
        const g = data.groups[it.ref];
        line1[i] = g.cls;
        line2[i] = `${last(g.path)} · ${it.count} nodes`;
        w[i] = clamp(Math.max(this.tw(line1[i], true), this.tw(line2[i], false)) + 40, 80, 260);
        h[i] = 42;
      } else {
        const r = data.repeats[it.ref];
        line1[i] = r.label.replace(/ x(\d+)$/, " ×$1");
        line2[i] = `${last(r.paths[0])} … ${last(r.paths[r.paths.length - 1])}`;
        w[i] = clamp(Math.max(this.tw(line1[i], true), this.tw(line2[i], false)) + 40, 90, 260);
        h[i] = 48;
      }
    };

    // Open groups children first (their sizes make the parent's layout); leaves sized on the way.
    const openOrder: number[] = [];
    const visit = (i: number) => {
      const it = items[i];
      if (!it.open) return leaf(i);
      for (const c of it.children) visit(c);
      openOrder.push(i);
    };
    const size = (i: number) => {
      const it = items[i];
      const g = data.groups[it.ref];
      line1[i] = g.path === "" ? g.cls : `${g.cls}  ${g.path}`;
      const kids = it.children;
      const gedges = vis.groupEdges.get(i) ?? [];
      let sig = kids.length * 7919 + gedges.length;
      const mix = (v: number) => {
        sig = (Math.imul(sig, 31) + (v | 0)) | 0;
      };
      for (const c of kids) {
        mix(items[c].uid);
        mix(w[c] * 16);
        mix(h[c] * 16);
        mix(items[c].first);
      }
      for (const [a, b] of gedges) {
        mix(uidOf(a));
        mix(uidOf(b));
      }
      let cached = this.cache.get(it.key);
      if (!cached || cached.sig !== sig) {
        laidOut++;
        const local = new Map<number, number>();
        kids.forEach((c, k) => {
          local.set(items[c].uid, k);
        });
        const lnodes = kids.map((c) => ({ w: w[c], h: h[c], order: items[c].first }));
        let inIdx = -1;
        let outIdx = -1;
        const ledges: [number, number][] = [];
        const edgeIndex = new Map<number, number>();
        for (const [a, b] of gedges) {
          if (a === IN && inIdx < 0) {
            inIdx = lnodes.length;
            lnodes.push({ w: DUMMY, h: 0, order: -1 });
          }
          if (b === OUT && outIdx < 0) {
            outIdx = lnodes.length;
            lnodes.push({ w: DUMMY, h: 0, order: Number.MAX_SAFE_INTEGER });
          }
          const la = a === IN ? inIdx : local.get(items[a].uid)!;
          const lb = b === OUT ? outIdx : local.get(items[b].uid)!;
          edgeIndex.set(ekey(a, b), ledges.length);
          ledges.push([la, lb]);
        }
        const res = layered(lnodes, ledges);
        cached = { sig, res, local, edgeIndex, inIdx, outIdx };
        this.cache.set(it.key, cached);
      }
      layouts.set(i, cached);
      const head = it.parent < 0 ? 0 : HEAD;
      const pad = it.parent < 0 ? 0 : PAD;
      w[i] = Math.max(cached.res.width + 2 * pad, this.tw(line1[i], true) + 40);
      h[i] = cached.res.height + head + pad;
    };
    visit(0);
    for (let k = 0; k < openOrder.length; k++) {
      size(openOrder[k]);
      if (due()) {
        yield (k + 1) / openOrder.length;
        t0 = performance.now();
      }
    }

    const place = (i: number, px: number, py: number) => {
      x[i] = px;
      y[i] = py;
      const it = items[i];
      if (!it.open) return;
      const c = layouts.get(i)!;
      const head = it.parent < 0 ? 0 : HEAD;
      const pad = it.parent < 0 ? 0 : PAD;
      const innerX = px + pad + (w[i] - 2 * pad - c.res.width) / 2;
      for (const k of it.children) {
        const li = c.local.get(items[k].uid)!;
        place(k, innerX + c.res.x[li], py + head + c.res.y[li]);
      }
    };
    place(0, 0, 0);
    if (due()) {
      yield 1;
      t0 = performance.now();
    }

    const origin = (g: number): [number, number, Cached] => {
      const c = layouts.get(g)!;
      const it = items[g];
      const head = it.parent < 0 ? 0 : HEAD;
      const pad = it.parent < 0 ? 0 : PAD;
      return [x[g] + pad + (w[g] - 2 * pad - c.res.width) / 2, y[g] + head, c];
    };
    const route = (g: number, a: number, b: number, out: number[]) => {
      const [ox, oy, c] = origin(g);
      const ei = c.edgeIndex.get(ekey(a, b));
      if (a === IN && c.inIdx >= 0) out.push(ox + c.res.x[c.inIdx] + DUMMY / 2, oy - 4);
      const pts = ei === undefined ? undefined : c.res.routes.get(ei);
      if (pts) for (let k = 0; k < pts.length; k += 2) out.push(ox + pts[k], oy + pts[k + 1]);
      if (b === OUT && c.outIdx >= 0)
        out.push(ox + c.res.x[c.outIdx] + DUMMY / 2, oy + c.res.y[c.outIdx] + 4);
    };

    // Ports: edges leave a node's bottom and reach a node's top spread by their far end's x.
    const ne = vis.edges.length;
    const sx = new Float64Array(ne);
    const ex = new Float64Array(ne);
    const cxOf = (i: number) => x[i] + w[i] / 2;
    const ports = (end: (k: number) => number, far: (k: number) => number, into: Float64Array) => {
      const start = new Int32Array(n + 1);
      for (let k = 0; k < ne; k++) start[end(k) + 1]++;
      for (let i = 0; i < n; i++) start[i + 1] += start[i];
      const fill = start.slice(0, n);
      const order = new Int32Array(ne);
      for (let k = 0; k < ne; k++) order[fill[end(k)]++] = k;
      for (let i = 0; i < n; i++) {
        const a = start[i];
        const m = start[i + 1] - a;
        if (!m) continue;
        if (m === 1) {
          into[order[a]] = cxOf(i);
          continue;
        }
        const list = Array.from(order.subarray(a, a + m)).sort((p, q) => far(p) - far(q));
        const span = Math.min(w[i] - 16, 14 * (m - 1));
        list.forEach((k, j) => {
          into[k] = cxOf(i) - span / 2 + (span * j) / (m - 1);
        });
      }
    };
    const edges = vis.edges;
    ports(
      (k) => edges[k].src,
      (k) => cxOf(edges[k].dst),
      sx,
    );
    ports(
      (k) => edges[k].dst,
      (k) => cxOf(edges[k].src),
      ex,
    );

    const paths: number[][] = [];
    const labels: string[] = [];
    for (let k = 0; k < vis.edges.length; k++) {
      if ((k & 1023) === 1023 && due()) {
        yield 1;
        t0 = performance.now();
      }
      const e = vis.edges[k];
      const pts: number[] = [sx[k], y[e.src] + h[e.src]];
      for (let j = 0; j < e.exits.length; j += 2) route(e.exits[j], e.exits[j + 1], OUT, pts);
      route(e.group, e.a, e.b, pts);
      for (let j = e.entries.length - 2; j >= 0; j -= 2)
        route(e.entries[j], IN, e.entries[j + 1], pts);
      pts.push(ex[k], y[e.dst]);
      paths.push(pts);
      const src = data.edges[e.edge * 4];
      const out = data.edges[e.edge * 4 + 2];
      labels.push(shapeText(data.tensors[data.nodes[src].outs[out]]));
    }
    return {
      vis,
      x,
      y,
      w,
      h,
      line1,
      line2,
      paths,
      labels,
      width: w[0],
      height: h[0],
      laidOut,
    };
  }
}
