// The colour scale a tensor view uses (auto, symmetric, percentile clipping, log magnitude,
// fixed range) and painting of values with it, optionally dimming cells outside a value range.

import { chooseScale, paint, type RangeStats, type Scale } from "../core/colormap";

export interface Hist {
  token: number;
  lo: number | null;
  hi: number | null;
  abs_lo: number | null;
  abs_hi: number | null;
  /** Fine-bin counts over [lo, hi] (decoded). */
  counts: ArrayLike<number>;
}

export interface ScaleOptions {
  colormap: string;
  scale: string;
  vmin: number | null;
  vmax: number | null;
  clip: [number, number];
}

export interface ViewScale extends Scale {
  /** lo/hi are log10 of magnitudes and values are painted by log10|v|. */
  log: boolean;
  /** A short description of the mapping for the colour bar. */
  note: string;
}

/** The q-th percentile (0..100) of the finite values, within one fine bin (as in Python). */
export function percentile(h: Hist, q: number): number | null {
  if (h.lo === null || h.hi === null) return null;
  let total = 0;
  for (let i = 0; i < h.counts.length; i++) total += h.counts[i];
  if (!total) return null;
  if (!(h.hi > h.lo)) return h.lo;
  const target = (q / 100) * total;
  const width = (h.hi - h.lo) / h.counts.length;
  let cum = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    if (cum + c >= target && c > 0) {
      const frac = Math.min(1, Math.max(0, (target - cum) / c));
      return h.lo + (i + frac) * width;
    }
    cum += c;
  }
  return h.hi;
}

export function viewScale(stats: RangeStats, hist: Hist | undefined, o: ScaleOptions): ViewScale {
  const plain = (s: Scale, note: string): ViewScale => ({ ...s, log: false, note });
  if (o.scale === "log") {
    const m = Math.max(Math.abs(stats.min ?? 0), Math.abs(stats.max ?? 0));
    const hi = hist?.abs_hi ?? (m > 0 ? m : 1);
    const lo = hist?.abs_lo ?? hi * 1e-6;
    const map =
      o.colormap === "auto" || o.colormap === "diverging" || o.colormap === "sequential"
        ? "magma"
        : o.colormap;
    let a = Math.log10(lo);
    let b = Math.log10(hi);
    if (!(b > a)) {
      a -= 0.5;
      b += 0.5;
    }
    return { map, lo: a, hi: b, diverging: false, log: true, note: "|x|, log scale" };
  }
  if (o.scale === "percentile" && hist) {
    const [p, q] = o.clip;
    const lo = percentile(hist, p);
    const hi = percentile(hist, q);
    if (lo !== null && hi !== null) {
      return plain(chooseScale({ min: lo, max: hi }, o.colormap, null, null), `clipped ${p}-${q}%`);
    }
  }
  if (o.scale === "symmetric") {
    const map = o.colormap === "auto" || o.colormap === "sequential" ? "diverging" : o.colormap;
    const s = chooseScale(stats, map, null, null);
    const m = Math.max(Math.abs(s.lo), Math.abs(s.hi));
    return { map: s.map, lo: -m, hi: m, diverging: true, log: false, note: "symmetric around 0" };
  }
  if (o.scale === "fixed") {
    return plain(chooseScale(stats, o.colormap, o.vmin, o.vmax), "fixed range");
  }
  return plain(chooseScale(stats, o.colormap, o.vmin, o.vmax), "");
}

/** Paint values (RGBA into `out`); with `highlight`, cells outside [a, b) are dimmed. */
export function paintValues(
  values: ArrayLike<number>,
  s: ViewScale,
  out: Uint8ClampedArray,
  highlight?: [number, number],
): void {
  let v: ArrayLike<number> = values;
  if (s.log) {
    const t = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const x = values[i];
      t[i] = Number.isFinite(x) ? (x === 0 ? s.lo - 1 : Math.log10(Math.abs(x))) : x;
    }
    v = t;
  }
  paint(v, s, out);
  if (!highlight) return;
  const [a, b] = highlight;
  for (let i = 0, j = 0; i < values.length; i++, j += 4) {
    const x = values[i];
    if (x >= a && x < b) continue;
    out[j] = (out[j] + 3 * 200) >> 2;
    out[j + 1] = (out[j + 1] + 3 * 200) >> 2;
    out[j + 2] = (out[j + 2] + 3 * 200) >> 2;
  }
}

/**
 * The colour range over shown block values: their 1st to 99th percentile (one outlier block
 * must not grey out the rest), symmetric around 0 for a signed tensor so it keeps its diverging
 * map; null when the shown values do not span a range (then the tensor's range is used).
 */
export function shownRange(values: ArrayLike<number>, tensor: RangeStats): RangeStats | null {
  const n = values.length;
  const step = Math.max(1, Math.floor(n / 65536));
  const finite: number[] = [];
  for (let i = 0; i < n; i += step) if (Number.isFinite(values[i])) finite.push(values[i]);
  if (!finite.length) return null;
  finite.sort((a, b) => a - b);
  const q = (p: number) => finite[Math.min(finite.length - 1, Math.floor(p * finite.length))];
  const lo = q(0.01);
  const hi = q(0.99);
  if ((tensor.min ?? 0) < 0 && (tensor.max ?? 0) > 0) {
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    return m > 0 ? { min: -m, max: m } : null;
  }
  return hi > lo ? { min: lo, max: hi } : null;
}
