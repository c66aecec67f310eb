// DOM-free logic of the projection view: the data<->screen transform, re-centring for float32
// precision at deep zoom, a uniform grid for nearest-point lookup, lasso hit-testing, and the
// per-point colours (categorical palette, continuous map, hidden classes).
import { LUT_SIZE, lut, NAN_RGB, paint } from "../core/colormap";

/** View of the data plane: centre (float64) and pixels per data unit. */
export interface ViewBox {
  cx: number;
  cy: number;
  k: number;
  width: number;
  height: number;
}

export function toScreen(v: ViewBox, x: number, y: number): [number, number] {
  return [(x - v.cx) * v.k + v.width / 2, v.height / 2 - (y - v.cy) * v.k];
}

export function toData(v: ViewBox, sx: number, sy: number): [number, number] {
  return [(sx - v.width / 2) / v.k + v.cx, (v.height / 2 - sy) / v.k + v.cy];
}

/** Zoom by `factor` keeping the data point under screen (sx, sy) fixed. */
export function zoomAt(v: ViewBox, sx: number, sy: number, factor: number): ViewBox {
  const [dx, dy] = toData(v, sx, sy);
  const k = Math.min(Math.max(v.k * factor, 1e-3), 1e12);
  return {
    ...v,
    k,
    cx: dx - (sx - v.width / 2) / k,
    cy: dy - (v.height / 2 - sy) / k,
  };
}

/** The view that shows every finite point of `xy` (interleaved x, y) with a margin. */
export function fitView(xy: ArrayLike<number>, width: number, height: number): ViewBox {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (let i = 0; i + 1 < xy.length; i += 2) {
    const x = xy[i];
    const y = xy[i + 1];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (!Number.isFinite(x0))
    return { cx: 0, cy: 0, k: Math.min(width, height) / 2.2, width, height };
  const w = Math.max(x1 - x0, 1e-9);
  const h = Math.max(y1 - y0, 1e-9);
  const k = Math.min(width / w, height / h) * 0.92;
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, k, width, height };
}

/**
 * Coordinates relative to `origin`, computed in float64 and stored as float32: near the origin
 * float32 keeps its full relative precision, so a deep zoom does not quantise the points.
 */
export function recentred(
  xy: ArrayLike<number>,
  ox: number,
  oy: number,
  out?: Float32Array,
): Float32Array {
  const r = out && out.length === xy.length ? out : new Float32Array(xy.length);
  for (let i = 0; i + 1 < xy.length; i += 2) {
    r[i] = xy[i] - ox;
    r[i + 1] = xy[i + 1] - oy;
  }
  return r;
}

/** Whether the GPU buffer's origin is too far from the view centre for float32 at this zoom. */
export function needsRebase(v: ViewBox, ox: number, oy: number): boolean {
  // float32 has 24 bits: keep |offset| * k (the offset in pixels) below 2^14 px so a pixel
  // still spans many float32 steps of the stored coordinates.
  const off = Math.max(Math.abs(v.cx - ox), Math.abs(v.cy - oy));
  return off * v.k > 16384 || v.k > 1e4;
}

/** A uniform grid over the points for nearest-point lookup (hover, click). */
export class PointGrid {
  private readonly start: Int32Array;
  private readonly items: Int32Array;
  readonly x0: number;
  readonly y0: number;
  readonly cell: number;
  readonly cols: number;
  readonly rows: number;

  constructor(
    private readonly xy: ArrayLike<number>,
    visible?: (i: number) => boolean,
  ) {
    const n = xy.length >> 1;
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i];
      const y = xy[2 * i + 1];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
    if (!Number.isFinite(x0)) {
      x0 = y0 = 0;
      x1 = y1 = 1;
    }
    const side = Math.max(1, Math.ceil(Math.sqrt(n / 2)));
    this.cell = Math.max((x1 - x0) / side, (y1 - y0) / side, 1e-12);
    this.cols = Math.floor((x1 - x0) / this.cell) + 1;
    this.rows = Math.floor((y1 - y0) / this.cell) + 1;
    this.x0 = x0;
    this.y0 = y0;
    const cells = this.cols * this.rows;
    const counts = new Int32Array(cells + 1);
    const cellOf = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i];
      const y = xy[2 * i + 1];
      if (!Number.isFinite(x) || !Number.isFinite(y) || (visible && !visible(i))) continue;
      const c = this.cellIndex(x, y);
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < cells; c++) counts[c + 1] += counts[c];
    this.start = counts;
    this.items = new Int32Array(counts[cells]);
    const fill = counts.slice(0, cells);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) this.items[fill[cellOf[i]]++] = i;
  }

  private cellIndex(x: number, y: number): number {
    const cx = Math.min(this.cols - 1, Math.max(0, Math.floor((x - this.x0) / this.cell)));
    const cy = Math.min(this.rows - 1, Math.max(0, Math.floor((y - this.y0) / this.cell)));
    return cy * this.cols + cx;
  }

  /** The point nearest to (x, y) within `radius` (data units), or -1. */
  nearest(x: number, y: number, radius: number): number {
    const c0 = Math.max(0, Math.floor((x - radius - this.x0) / this.cell));
    const c1 = Math.min(this.cols - 1, Math.floor((x + radius - this.x0) / this.cell));
    const r0 = Math.max(0, Math.floor((y - radius - this.y0) / this.cell));
    const r1 = Math.min(this.rows - 1, Math.floor((y + radius - this.y0) / this.cell));
    let best = -1;
    let bestD = radius * radius;
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const cell = r * this.cols + c;
        for (let j = this.start[cell]; j < this.start[cell + 1]; j++) {
          const i = this.items[j];
          const dx = this.xy[2 * i] - x;
          const dy = this.xy[2 * i + 1] - y;
          const d = dx * dx + dy * dy;
          if (d <= bestD) {
            bestD = d;
            best = i;
          }
        }
      }
    }
    return best;
  }
}

/** Even-odd rule: is (x, y) inside the polygon `poly` (interleaved x, y)? */
export function insidePolygon(poly: ArrayLike<number>, x: number, y: number): boolean {
  let inside = false;
  const n = poly.length >> 1;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = poly[2 * i];
    const yi = poly[2 * i + 1];
    const xj = poly[2 * j];
    const yj = poly[2 * j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Indices (point order) of the points of `xy` inside the lasso `poly` (both in data units). */
export function lassoSelect(
  xy: ArrayLike<number>,
  poly: ArrayLike<number>,
  visible?: (i: number) => boolean,
): number[] {
  if (poly.length < 6) return [];
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (let i = 0; i + 1 < poly.length; i += 2) {
    x0 = Math.min(x0, poly[i]);
    x1 = Math.max(x1, poly[i]);
    y0 = Math.min(y0, poly[i + 1]);
    y1 = Math.max(y1, poly[i + 1]);
  }
  const out: number[] = [];
  const n = xy.length >> 1;
  for (let i = 0; i < n; i++) {
    const x = xy[2 * i];
    const y = xy[2 * i + 1];
    if (x < x0 || x > x1 || y < y0 || y > y1) continue; // also drops NaN
    if (visible && !visible(i)) continue;
    if (insidePolygon(poly, x, y)) out.push(i);
  }
  return out;
}

// Tableau 10 then its light variants: 20 distinguishable classes; more cycle with a note.
export const PALETTE: readonly (readonly [number, number, number])[] = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
  "#a0cbe8",
  "#ffbe7d",
  "#ff9d9a",
  "#86bcb6",
  "#8cd17d",
  "#f1ce63",
  "#d4a6c8",
  "#fabfd2",
  "#d7b5a6",
  "#79706e",
].map(
  (c) =>
    [
      Number.parseInt(c.slice(1, 3), 16),
      Number.parseInt(c.slice(3, 5), 16),
      Number.parseInt(c.slice(5, 7), 16),
    ] as const,
);
export const CORRECT_RGB = [
  [89, 161, 79],
  [225, 87, 89],
] as const; // green correct, red wrong

export interface Colouring {
  kind: "categorical" | "continuous";
  values: ArrayLike<number>;
  classes?: string[];
  range?: [number, number];
  /** Colours per class (defaults to PALETTE). */
  palette?: readonly (readonly [number, number, number])[];
}

export function classColour(c: Colouring, code: number): readonly [number, number, number] {
  const pal = c.palette ?? PALETTE;
  return code < 0 ? NAN_RGB : pal[code % pal.length];
}

/**
 * RGBA per point: class colours (hidden classes get alpha 0, so they are neither drawn nor
 * picked) or a continuous map over `range` (viridis; NaN/Inf in their own colours).
 */
export function pointColours(
  c: Colouring,
  hidden: ReadonlySet<string>,
  alpha: number,
  out?: Uint8Array,
): Uint8Array {
  const n = c.values.length;
  const rgba = out && out.length === 4 * n ? out : new Uint8Array(4 * n);
  const a = Math.round(Math.min(1, Math.max(0, alpha)) * 255);
  if (c.kind === "categorical") {
    // one RGBA word a class (little-endian: the byte order of rgba), then one store a point
    const classes = c.classes ?? [];
    const table = new Uint32Array(Math.max(1, classes.length));
    const bytes = new Uint8Array(table.buffer);
    classes.forEach((name, code) => {
      const rgb = classColour(c, code);
      bytes.set([rgb[0], rgb[1], rgb[2], hidden.has(name) ? 0 : a], 4 * code);
    });
    const unknown = classColour(c, -1);
    const other = new Uint8Array([unknown[0], unknown[1], unknown[2], a]);
    const otherWord = new Uint32Array(other.buffer)[0];
    const aligned = rgba.byteOffset % 4 === 0;
    const out32 = aligned ? new Uint32Array(rgba.buffer, rgba.byteOffset, n) : new Uint32Array(n);
    const m = table.length;
    for (let i = 0; i < n; i++) {
      const code = c.values[i];
      out32[i] = code >= 0 && code < m ? table[code] : otherWord;
    }
    if (!aligned) rgba.set(new Uint8Array(out32.buffer));
    return rgba;
  }
  const [lo, hi] = c.range ?? [0, 1];
  const view = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length);
  paint(c.values, { map: "viridis", lo, hi: hi > lo ? hi : lo + 1, diverging: false }, view);
  for (let i = 0; i < n; i++) rgba[4 * i + 3] = a;
  return rgba;
}

/** The gradient stops of the continuous map, for the legend's colour bar. */
export function gradientCss(): string {
  const t = lut("viridis");
  const stops: string[] = [];
  for (let s = 0; s <= 8; s++) {
    const i = Math.round((s / 8) * (LUT_SIZE - 1));
    stops.push(`rgb(${t[3 * i]},${t[3 * i + 1]},${t[3 * i + 2]}) ${(s / 8) * 100}%`);
  }
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** Default point radius in CSS px: larger for few points, never under 1.5 px. */
export function autoPointSize(n: number): number {
  return Math.min(6, Math.max(1.5, 3 * Math.sqrt(10000 / Math.max(1, n))));
}
