// The visible window of a 2-D tensor, in tensor cells (fractional while zooming), and the pure
// arithmetic of zoom, pan, box zoom, tile requests and axis ticks (tested without a DOM).

export interface Win {
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}

/** Fewest cells a window may show on a side (zoomed in to the limit). */
export const MIN_CELLS = 2;

export function fullWindow(rows: number, cols: number): Win {
  return { r0: 0, r1: rows, c0: 0, c1: cols };
}

export function isFull(w: Win, rows: number, cols: number): boolean {
  return w.r0 <= 0 && w.c0 <= 0 && w.r1 >= rows && w.c1 >= cols;
}

function clampAxis(a: number, b: number, n: number): [number, number] {
  const min = Math.min(MIN_CELLS, n);
  let span = Math.min(n, Math.max(min, b - a));
  if (!(span > 0)) span = n;
  let lo = Math.max(0, Math.min(a, n - span));
  if (!Number.isFinite(lo)) lo = 0;
  return [lo, lo + span];
}

/** The window kept inside the tensor and at least MIN_CELLS on a side. */
export function clampWin(w: Win, rows: number, cols: number): Win {
  const [r0, r1] = clampAxis(w.r0, w.r1, rows);
  const [c0, c1] = clampAxis(w.c0, w.c1, cols);
  return { r0, r1, c0, c1 };
}

/**
 * Zoom by `factor` (< 1 zooms in) keeping the point at fractions (fx, fy) of the canvas fixed.
 */
export function zoomAt(
  w: Win,
  factor: number,
  fx: number,
  fy: number,
  rows: number,
  cols: number,
): Win {
  const r = w.r0 + fy * (w.r1 - w.r0);
  const c = w.c0 + fx * (w.c1 - w.c0);
  const h = Math.min(rows, Math.max(Math.min(MIN_CELLS, rows), (w.r1 - w.r0) * factor));
  const wd = Math.min(cols, Math.max(Math.min(MIN_CELLS, cols), (w.c1 - w.c0) * factor));
  return clampWin(
    { r0: r - fy * h, r1: r - fy * h + h, c0: c - fx * wd, c1: c - fx * wd + wd },
    rows,
    cols,
  );
}

/** Pan by fractions of the canvas (dragging right by dx moves the view left). */
export function panBy(w: Win, dx: number, dy: number, rows: number, cols: number): Win {
  const dr = dy * (w.r1 - w.r0);
  const dc = dx * (w.c1 - w.c0);
  return clampWin({ r0: w.r0 - dr, r1: w.r1 - dr, c0: w.c0 - dc, c1: w.c1 - dc }, rows, cols);
}

/** The window of a box between two canvas points given as fractions. */
export function boxWin(
  w: Win,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  rows: number,
  cols: number,
): Win {
  const [ax, bx] = x0 < x1 ? [x0, x1] : [x1, x0];
  const [ay, by] = y0 < y1 ? [y0, y1] : [y1, y0];
  const h = w.r1 - w.r0;
  const wd = w.c1 - w.c0;
  return clampWin(
    { r0: w.r0 + ay * h, r1: w.r0 + by * h, c0: w.c0 + ax * wd, c1: w.c0 + bx * wd },
    rows,
    cols,
  );
}

export interface TileRequest {
  window: [number, number, number, number];
  out: [number, number];
}

/** The integer window that covers `w` and the output size (canvas pixels, device). */
export function tileRequest(
  w: Win,
  pxW: number,
  pxH: number,
  rows: number,
  cols: number,
): TileRequest {
  const r0 = Math.max(0, Math.floor(w.r0));
  const c0 = Math.max(0, Math.floor(w.c0));
  const r1 = Math.min(rows, Math.max(r0 + 1, Math.ceil(w.r1)));
  const c1 = Math.min(cols, Math.max(c0 + 1, Math.ceil(w.c1)));
  // Output pixels for the integer window (a little wider than the visible one at the edges).
  const outH = Math.max(1, Math.round((pxH * (r1 - r0)) / Math.max(1e-9, w.r1 - w.r0)));
  const outW = Math.max(1, Math.round((pxW * (c1 - c0)) / Math.max(1e-9, w.c1 - w.c0)));
  return { window: [r0, r1, c0, c1], out: [Math.min(outH, r1 - r0), Math.min(outW, c1 - c0)] };
}

/** Integer tick positions (cell indices) in [lo, hi) at a 1-2-5 step, at most `max` of them. */
export function niceTicks(lo: number, hi: number, max: number): number[] {
  const a = Math.ceil(lo - 0.5);
  const b = Math.floor(hi - 0.5);
  if (b < a || max < 1) return [];
  const span = Math.max(1, b - a);
  const raw = span / Math.max(1, max - 1);
  const mag = 10 ** Math.floor(Math.log10(Math.max(1, raw)));
  let step = mag;
  for (const m of [1, 2, 5, 10]) {
    step = m * mag;
    if (step >= raw) break;
  }
  step = Math.max(1, Math.round(step));
  const out: number[] = [];
  for (let t = Math.ceil(a / step) * step; t <= b; t += step) out.push(t);
  if (out.length === 0) out.push(a);
  return out;
}

/** Canvas fraction of the centre of cell `i` on an axis showing [lo, hi). */
export function cellCentre(i: number, lo: number, hi: number): number {
  return (i + 0.5 - lo) / (hi - lo);
}
