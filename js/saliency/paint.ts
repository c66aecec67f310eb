// Attribution over an image and over tokens, without the DOM: the colour scale of a map (signed:
// diverging around 0; absolute: sequential over |a|), and compositing where the overlay's alpha
// grows with the magnitude, so weak attribution leaves the input visible and strong covers it.

import { LUT_SIZE, lut, NAN_RGB, NEGINF_RGB, POSINF_RGB, type Rgb } from "../core/colormap";

export type SignMode = "signed" | "absolute";

export const SIGNED_MAP = "rdbu";
export const ABSOLUTE_MAP = "magma";

/** The LUT colour and weight (0..1) of one attribution value; NaN/Inf get their own colours. */
export function overlayColor(v: number, maxAbs: number, mode: SignMode): [Rgb, number] {
  if (Number.isNaN(v)) return [NAN_RGB, 1];
  if (!Number.isFinite(v)) return [v > 0 ? POSINF_RGB : NEGINF_RGB, 1];
  const m = maxAbs > 0 ? maxAbs : 1;
  const w = Math.min(1, Math.abs(v) / m);
  const table = lut(mode === "signed" ? SIGNED_MAP : ABSOLUTE_MAP);
  const top = LUT_SIZE - 1;
  const t = mode === "signed" ? (Math.max(-m, Math.min(m, v)) + m) / (2 * m) : w;
  const k = Math.round(t * top);
  return [[table[k * 3], table[k * 3 + 1], table[k * 3 + 2]], w];
}

/**
 * RGBA of `values` (h*w) over `image` (h*w*channels, channels 1 or 3, or undefined for the map
 * alone) at `opacity` (0..1): alpha = opacity * |v| / maxAbs.
 */
export function composite(
  image: Uint8Array | undefined,
  channels: number,
  values: ArrayLike<number>,
  maxAbs: number,
  mode: SignMode,
  opacity: number,
  out: Uint8ClampedArray,
): void {
  const op = Math.max(0, Math.min(1, opacity));
  for (let i = 0, j = 0; i < values.length; i++, j += 4) {
    let r = 255;
    let g = 255;
    let b = 255;
    if (image) {
      if (channels === 3) {
        r = image[i * 3];
        g = image[i * 3 + 1];
        b = image[i * 3 + 2];
      } else {
        r = g = b = image[i];
      }
    }
    const [c, w] = overlayColor(values[i], maxAbs, mode);
    const a = image ? op * w : 1;
    out[j] = r * (1 - a) + c[0] * a;
    out[j + 1] = g * (1 - a) + c[1] * a;
    out[j + 2] = b * (1 - a) + c[2] * a;
    out[j + 3] = 255;
  }
}

/** CSS background of a token: the map colour with alpha growing with |v| (text stays readable). */
export function tokenBackground(v: number, maxAbs: number, mode: SignMode): string {
  const [c, w] = overlayColor(v, maxAbs, mode);
  const a = Number.isFinite(v) ? 0.85 * w : 0.9;
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${a.toFixed(3)})`;
}

/** Whether a token's text should be light: its background, over a light page, is dark. */
export function lightText(v: number, maxAbs: number, mode: SignMode): boolean {
  const [c, w] = overlayColor(v, maxAbs, mode);
  const alpha = Number.isFinite(v) ? 0.85 * w : 0.9;
  const luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
  return luma * alpha + 255 * (1 - alpha) < 128;
}

/** The blocks a long token list is cut into (rendered lazily; content-visibility skips the rest). */
export function chunks(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}
