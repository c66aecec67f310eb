// Colour maps as 256-entry RGB lookup tables, value-to-colour scales, and the colours of NaN and
// +/-Inf (their own, outside every map, so a bad value is never mistaken for a number).

export type Rgb = readonly [number, number, number];

export const NAN_RGB: Rgb = [255, 0, 255]; // magenta
export const POSINF_RGB: Rgb = [0, 255, 0]; // lime
export const NEGINF_RGB: Rgb = [0, 255, 255]; // cyan

const STOPS: Record<string, string[]> = {
  // matplotlib's viridis / magma sampled at 9 points; ColorBrewer RdBu (reversed: blue < 0 < red).
  viridis: [
    "#440154",
    "#472d7b",
    "#3b528b",
    "#2c728e",
    "#21918c",
    "#28ae80",
    "#5ec962",
    "#addc30",
    "#fde725",
  ],
  magma: [
    "#000004",
    "#1c1044",
    "#4f127b",
    "#812581",
    "#b5367a",
    "#e55064",
    "#fb8761",
    "#fec287",
    "#fcfdbf",
  ],
  gray: ["#000000", "#ffffff"],
  rdbu: [
    "#053061",
    "#2166ac",
    "#4393c3",
    "#92c5de",
    "#d1e5f0",
    "#f7f7f7",
    "#fddbc7",
    "#f4a582",
    "#d6604d",
    "#b2182b",
    "#67001f",
  ],
};

export const COLORMAP_NAMES = Object.keys(STOPS);

function hex(c: string): Rgb {
  return [
    Number.parseInt(c.slice(1, 3), 16),
    Number.parseInt(c.slice(3, 5), 16),
    Number.parseInt(c.slice(5, 7), 16),
  ];
}

const cache = new Map<string, Uint8Array>();

/** Entries of a lookup table: odd, so that a diverging map's centre stop (0) is one entry. */
export const LUT_SIZE = 255;

/** LUT_SIZE x RGB lookup table of a named map, linear between its stops. */
export function lut(name: string): Uint8Array {
  const hit = cache.get(name);
  if (hit) return hit;
  const stops = STOPS[name];
  if (!stops)
    throw new Error(
      `unknown colour map ${JSON.stringify(name)}; known: ${COLORMAP_NAMES.join(", ")}`,
    );
  const rgb = stops.map(hex);
  const table = new Uint8Array(LUT_SIZE * 3);
  for (let i = 0; i < LUT_SIZE; i++) {
    const t = (i / (LUT_SIZE - 1)) * (rgb.length - 1);
    const k = Math.min(rgb.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++)
      table[i * 3 + c] = Math.round(rgb[k][c] * (1 - f) + rgb[k + 1][c] * f);
  }
  cache.set(name, table);
  return table;
}

export interface Scale {
  map: string;
  lo: number;
  hi: number;
  diverging: boolean;
}

export interface RangeStats {
  min: number | null;
  max: number | null;
}

/**
 * The scale a view uses: "auto" is diverging and symmetric around 0 for signed data, sequential
 * otherwise. Explicit vmin/vmax win. A zero-width range is widened so that nothing divides by 0.
 */
export function chooseScale(
  stats: RangeStats,
  colormap: string,
  vmin: number | null | undefined,
  vmax: number | null | undefined,
): Scale {
  const min = stats.min ?? 0;
  const max = stats.max ?? 0;
  const signed = min < 0 && max > 0;
  let map: string;
  let diverging: boolean;
  if (colormap === "auto") {
    diverging = signed;
    map = signed ? "rdbu" : "viridis";
  } else if (colormap === "diverging") {
    diverging = true;
    map = "rdbu";
  } else if (colormap === "sequential") {
    diverging = false;
    map = "viridis";
  } else {
    diverging = colormap === "rdbu";
    map = colormap;
  }
  let lo: number;
  let hi: number;
  if (diverging) {
    const m = Math.max(Math.abs(min), Math.abs(max));
    lo = -m;
    hi = m;
  } else {
    lo = min;
    hi = max;
  }
  if (vmin !== null && vmin !== undefined) lo = vmin;
  if (vmax !== null && vmax !== undefined) hi = vmax;
  if (!(hi > lo)) {
    // All-equal data (or a degenerate user range): centre the single value.
    const c = Number.isFinite(lo) ? lo : 0;
    const half = Math.abs(c) > 0 ? Math.abs(c) * 0.5 : 0.5;
    lo = c - half;
    hi = c + half;
  }
  return { map, lo, hi, diverging };
}

const packedCache = new Map<string, Uint32Array>();

/** A map's LUT as one RGBA word per entry (in the platform's byte order), then NaN, +Inf, -Inf. */
function packedLut(name: string): Uint32Array {
  const hit = packedCache.get(name);
  if (hit) return hit;
  const table = lut(name);
  const words = new Uint32Array(LUT_SIZE + 3);
  const bytes = new Uint8Array(words.buffer);
  const put = (i: number, r: number, g: number, b: number) => bytes.set([r, g, b, 255], i * 4);
  for (let i = 0; i < LUT_SIZE; i++) put(i, table[i * 3], table[i * 3 + 1], table[i * 3 + 2]);
  put(LUT_SIZE, ...NAN_RGB);
  put(LUT_SIZE + 1, ...POSINF_RGB);
  put(LUT_SIZE + 2, ...NEGINF_RGB);
  packedCache.set(name, words);
  return words;
}

/** Paint `values` into RGBA `out` (length 4n) with `scale`; NaN/Inf get their own colours and
 * values outside [lo, hi] the end colours. One 32-bit write a pixel. */
export function paint(values: ArrayLike<number>, scale: Scale, out: Uint8ClampedArray): void {
  const words = packedLut(scale.map);
  const top = LUT_SIZE - 1;
  // (Capped: a subnormal-wide range must not make k infinite, 0 * Inf being NaN.)
  const k = Math.min(top / (scale.hi - scale.lo), 1e300);
  const lo = scale.lo;
  const n = values.length;
  // An ImageData's bytes are 4-aligned; any other array is painted via a copy.
  const aligned = out.byteOffset % 4 === 0;
  const px = aligned ? new Uint32Array(out.buffer, out.byteOffset, n) : new Uint32Array(n);
  const nan = words[LUT_SIZE];
  const posinf = words[LUT_SIZE + 1];
  const neginf = words[LUT_SIZE + 2];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const f = (v - lo) * k + 0.5;
    if (f >= 0 && f < top) px[i] = words[f | 0];
    else if (f >= top) px[i] = v === Number.POSITIVE_INFINITY ? posinf : words[top];
    else if (f < 0) px[i] = v === Number.NEGATIVE_INFINITY ? neginf : words[0];
    else px[i] = nan; // v is NaN
  }
  if (!aligned) out.set(new Uint8ClampedArray(px.buffer));
}

/** The colour of one value under a scale (for tests and legends). */
export function colorOf(v: number, scale: Scale): Rgb {
  const out = new Uint8ClampedArray(4);
  paint([v], scale, out);
  return [out[0], out[1], out[2]];
}

export function cssRgb(c: Rgb): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
