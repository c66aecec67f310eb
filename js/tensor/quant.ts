// Decoding of quantized tiles (layerscope/wire/quantize.py): codes 0..levels spread over
// [lo, hi] (log: over log10 of magnitudes), and sentinels for zero (log), NaN, +Inf, -Inf.

export interface Quant {
  lo: number;
  hi: number;
  log: boolean;
  levels: number;
}

export const ZERO = 251;
export const NAN = 252;
export const POSINF = 253;
export const NEGINF = 254;

/** Values of uint8 codes (the inverse of quantize_u8 within its stated error bound). */
export function dequantize(codes: Uint8Array, q: Quant): Float32Array {
  const table = new Float32Array(256);
  const a = q.log ? Math.log10(q.lo) : q.lo;
  const b = q.log ? Math.log10(q.hi) : q.hi;
  for (let c = 0; c <= q.levels; c++) {
    const t = a + (c * (b - a)) / q.levels;
    table[c] = q.log ? 10 ** t : t;
  }
  table[ZERO] = 0;
  table[NAN] = Number.NaN;
  table[POSINF] = Number.POSITIVE_INFINITY;
  table[NEGINF] = Number.NEGATIVE_INFINITY;
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i]];
  return out;
}
