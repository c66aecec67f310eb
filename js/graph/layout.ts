// Our own layered (Sugiyama-style) top-to-bottom layout of one open group's children: layers by
// longest path in execution order, dummy nodes on long edges, barycentre sweeps against
// crossings, and x by isotonic regression towards the neighbours (so chains run straight). The
// view lays out each open group on its own and caches it, so opening a group lays out only that
// group and re-places its ancestors. No DOM: vitest covers it.

export interface LNode {
  w: number;
  h: number;
  /** execution order: edges from a higher to a lower key are back edges (not layered) */
  order: number;
}

export interface LayoutResult {
  /** top-left corners */
  x: Float64Array;
  y: Float64Array;
  width: number;
  height: number;
  layer: Int32Array;
  /** edge index -> points [x0, y0, x1, y1, ...] the edge runs through (long edges) */
  routes: Map<number, number[]>;
}

export interface LayoutOptions {
  gapX: number;
  gapY: number;
  dummyW: number;
  sweeps: number;
}

const DEFAULTS: LayoutOptions = { gapX: 22, gapY: 42, dummyW: 6, sweeps: 6 };

/** Least-squares positions for centres `want` keeping order and minimum gaps `sep[i]` (i-1 to i). */
export function isotonic(want: number[], sep: number[]): number[] {
  const n = want.length;
  const off = new Array<number>(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += i ? sep[i] : 0;
    off[i] = acc;
  }
  // pool adjacent violators on want - off (must be non-decreasing)
  const sum: number[] = [];
  const cnt: number[] = [];
  for (let i = 0; i < n; i++) {
    sum.push(want[i] - off[i]);
    cnt.push(1);
    while (sum.length > 1) {
      const k = sum.length - 1;
      if (sum[k - 1] / cnt[k - 1] <= sum[k] / cnt[k]) break;
      sum[k - 1] += sum[k];
      cnt[k - 1] += cnt[k];
      sum.pop();
      cnt.pop();
    }
  }
  const out = new Array<number>(n);
  let i = 0;
  for (let b = 0; b < sum.length; b++) {
    const v = sum[b] / cnt[b];
    for (let c = 0; c < cnt[b]; c++, i++) out[i] = v + off[i];
  }
  return out;
}

export function layered(
  nodes: LNode[],
  edges: [number, number][],
  options: Partial<LayoutOptions> = {},
): LayoutResult {
  const opt = { ...DEFAULTS, ...options };
  const n = nodes.length;
  const topo = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => nodes[a].order - nodes[b].order || a - b,
  );
  const rank = new Int32Array(n);
  topo.forEach((v, i) => {
    rank[v] = i;
  });
  const fwd: [number, number, number][] = [];
  edges.forEach(([s, d], i) => {
    if (s !== d && rank[s] < rank[d]) fwd.push([s, d, i]);
  });
  const outs: number[][] = Array.from({ length: n }, () => []);
  const hasIn = new Uint8Array(n);
  for (const [s, d] of fwd) {
    outs[s].push(d);
    hasIn[d] = 1;
  }
  const layer = new Int32Array(n);
  for (const v of topo) for (const d of outs[v]) layer[d] = Math.max(layer[d], layer[v] + 1);
  // Sources with no inputs (constants, arange) sit just above their first consumer.
  for (let i = n - 1; i >= 0; i--) {
    const v = topo[i];
    if (hasIn[v] || outs[v].length === 0) continue;
    let m = Number.POSITIVE_INFINITY;
    for (const d of outs[v]) m = Math.min(m, layer[d]);
    layer[v] = Math.max(layer[v], m - 1);
  }

  // Real nodes 0..n-1, then dummies; adjacency over all.
  const W: number[] = nodes.map((v) => v.w);
  const H: number[] = nodes.map((v) => v.h);
  const L: number[] = Array.from(layer);
  const key: number[] = topo.map(() => 0);
  for (let i = 0; i < n; i++) key[i] = rank[i];
  const preds: number[][] = Array.from({ length: n }, () => []);
  const succs: number[][] = Array.from({ length: n }, () => []);
  const chains = new Map<number, number[]>();
  for (const [s, d, ei] of fwd) {
    let prev = s;
    const chain: number[] = [];
    for (let l = layer[s] + 1; l < layer[d]; l++) {
      const v = W.length;
      W.push(opt.dummyW);
      H.push(0);
      L.push(l);
      key.push(rank[s] + 0.5);
      preds.push([prev]);
      succs.push([]);
      succs[prev].push(v);
      chain.push(v);
      prev = v;
    }
    succs[prev].push(d);
    preds[d].push(prev);
    if (chain.length) chains.set(ei, chain);
  }
  const total = W.length;
  let layers = 0;
  for (const l of L) layers = Math.max(layers, l + 1);
  const rows: number[][] = Array.from({ length: layers }, () => []);
  for (let v = 0; v < total; v++) rows[L[v]].push(v);
  const pos = new Float64Array(total);
  for (const row of rows) {
    row.sort((a, b) => key[a] - key[b]);
    row.forEach((v, i) => {
      pos[v] = i;
    });
  }
  // Barycentre sweeps against crossings.
  const sweep = (row: number[], nbr: number[][]) => {
    const bary = new Map<number, number>();
    for (const v of row) {
      const ns = nbr[v];
      if (!ns.length) {
        bary.set(v, pos[v]);
        continue;
      }
      let s = 0;
      for (const u of ns) s += pos[u];
      bary.set(v, s / ns.length);
    }
    row.sort((a, b) => bary.get(a)! - bary.get(b)! || pos[a] - pos[b]);
    row.forEach((v, i) => {
      pos[v] = i;
    });
  };
  const bigRows = rows.some((r) => r.length > 1);
  for (let it = 0; bigRows && it < opt.sweeps; it++) {
    for (let l = 1; l < layers; l++) sweep(rows[l], preds);
    for (let l = layers - 2; l >= 0; l--) sweep(rows[l], succs);
  }
  // y: layer bands; nodes centred in their band.
  const top = new Float64Array(layers);
  const band = new Float64Array(layers);
  for (let v = 0; v < total; v++) band[L[v]] = Math.max(band[L[v]], H[v]);
  let y = 0;
  for (let l = 0; l < layers; l++) {
    top[l] = y;
    // a band of only pass-through points (a group's entry or exit) needs less room
    y += band[l] + (band[l] > 0 ? opt.gapY : opt.gapY / 2);
  }
  const height = Math.max(0, y - (layers && band[layers - 1] > 0 ? opt.gapY : opt.gapY / 2));
  // x: packed, then pulled towards neighbours' centres with order and gaps kept.
  const cx = new Float64Array(total);
  const gapOf = (a: number, b: number) => (a < n && b < n ? opt.gapX : opt.gapX / 2);
  const sepOf = (row: number[]) =>
    row.map((v, i) => (i ? (W[row[i - 1]] + W[v]) / 2 + gapOf(row[i - 1], v) : 0));
  for (const row of rows) {
    const sep = sepOf(row);
    let acc = 0;
    row.forEach((v, i) => {
      acc += sep[i];
      cx[v] = acc;
    });
  }
  const place = (row: number[], nbr: number[][], nbr2: number[][] | null) => {
    if (!row.length) return;
    const want = row.map((v) => {
      let s = 0;
      let c = 0;
      for (const u of nbr[v]) {
        s += cx[u];
        c++;
      }
      if (nbr2)
        for (const u of nbr2[v]) {
          s += cx[u];
          c++;
        }
      return c ? s / c : cx[v];
    });
    const got = isotonic(want, sepOf(row));
    row.forEach((v, i) => {
      cx[v] = got[i];
    });
  };
  for (let it = 0; it < 4; it++) {
    for (let l = 1; l < layers; l++) place(rows[l], preds, null);
    for (let l = layers - 2; l >= 0; l--) place(rows[l], succs, null);
  }
  for (let l = 0; l < layers; l++) place(rows[l], preds, succs);
  let minX = Number.POSITIVE_INFINITY;
  let maxX = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < total; v++) {
    minX = Math.min(minX, cx[v] - W[v] / 2);
    maxX = Math.max(maxX, cx[v] + W[v] / 2);
  }
  if (!total) minX = maxX = 0;
  const x = new Float64Array(n);
  const yy = new Float64Array(n);
  for (let v = 0; v < n; v++) {
    x[v] = cx[v] - W[v] / 2 - minX;
    yy[v] = top[L[v]] + (band[L[v]] - H[v]) / 2;
  }
  const routes = new Map<number, number[]>();
  for (const [ei, chain] of chains) {
    const pts: number[] = [];
    for (const v of chain) {
      const px = cx[v] - minX;
      pts.push(px, top[L[v]], px, top[L[v]] + band[L[v]]);
    }
    routes.set(ei, pts);
  }
  return { x, y: yy, width: maxX - minX, height, layer, routes };
}
