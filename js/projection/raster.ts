// Points drawn on the CPU into an RGBA pixel buffer (DOM-free: the renderer puts the buffer on
// a 2-D canvas). Where WebGL is software (SwiftShader, llvmpipe: headless and GPU-less machines)
// this is the faster way: measured here, 1M points take ~400-550 ms a frame through
// SwiftShader's point pipeline and ~10-20 ms written straight into pixels. Points are discs of
// a whole number of pixels, written opaque in draw order (no blending: the last point wins).
import type { ViewBox } from "./geometry";

/** Pixel offsets (dx, dy from the top-left of a d x d square) of a disc of diameter d. */
export function discOffsets(d: number): [Int32Array, Int32Array] {
  const xs: number[] = [];
  const ys: number[] = [];
  const r = d / 2;
  for (let dy = 0; dy < d; dy++)
    for (let dx = 0; dx < d; dx++) {
      const ex = dx + 0.5 - r;
      const ey = dy + 0.5 - r;
      if (d <= 2 || ex * ex + ey * ey <= r * r + 0.25) {
        xs.push(dx);
        ys.push(dy);
      }
    }
  return [Int32Array.from(xs), Int32Array.from(ys)];
}

export interface Splat {
  /** Diameter in device pixels. */
  diameter: number;
  /** Multiply every point's alpha by this (dimmed points behind a selection). */
  alpha?: number;
}

/**
 * Write the points `xy` (interleaved, data units) with colours `rgba32` (one little-endian
 * RGBA word a point, the ImageData layout; alpha 0: not drawn) into `px` (width x height,
 * device pixels), seen through `v` (CSS pixels) at `dpr` device pixels per CSS pixel.
 */
export function splat(
  px: Uint32Array,
  width: number,
  height: number,
  v: ViewBox,
  dpr: number,
  xy: ArrayLike<number>,
  rgba32: Uint32Array,
  opts: Splat,
): void {
  const d = Math.max(1, Math.round(opts.diameter));
  const [ox, oy] = discOffsets(d);
  const m = ox.length;
  const rel = new Int32Array(m);
  for (let j = 0; j < m; j++) rel[j] = oy[j] * width + ox[j];
  const k = v.k * dpr;
  // screen = data * k + shift, then back by the radius to the disc's top-left pixel
  const sx = width / 2 - v.cx * k - d / 2;
  const sy = height / 2 + v.cy * k - d / 2;
  const scaleAlpha = opts.alpha ?? 1;
  const xmax = width - d;
  const ymax = height - d;
  const n = Math.min(rgba32.length, xy.length >> 1);
  for (let i = 0; i < n; i++) {
    let c = rgba32[i];
    if ((c & 0xff000000) === 0) continue;
    const fx = xy[2 * i] * k + sx;
    const fy = sy - xy[2 * i + 1] * k;
    // NaN fails every comparison below and is skipped with the off-screen points
    if (!(fx > -d && fy > -d && fx < width && fy < height)) continue;
    const x = Math.floor(fx + 0.5);
    const y = Math.floor(fy + 0.5);
    if (scaleAlpha !== 1) c = (c & 0xffffff) | (Math.round((c >>> 24) * scaleAlpha) << 24);
    if (x >= 0 && y >= 0 && x <= xmax && y <= ymax) {
      const base = y * width + x;
      for (let j = 0; j < m; j++) px[base + rel[j]] = c;
    } else {
      for (let j = 0; j < m; j++) {
        const X = x + ox[j];
        const Y = y + oy[j];
        if (X >= 0 && Y >= 0 && X < width && Y < height) px[Y * width + X] = c;
      }
    }
  }
}

/** Little-endian RGBA words of `rgba` (4 bytes a point), without a copy where aligned. */
export function words(rgba: Uint8Array): Uint32Array {
  if (rgba.byteOffset % 4 === 0)
    return new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.length >> 2);
  return new Uint32Array(rgba.slice().buffer);
}

/** RGBA word (ImageData layout) of r, g, b, a bytes. */
export function word(r: number, g: number, b: number, a: number): number {
  return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** Whether a WebGL context draws in software (its points then cost far more than `splat`). */
export function softwareGl(gl: WebGLRenderingContext | WebGL2RenderingContext): boolean {
  let name = String(gl.getParameter(gl.RENDERER) ?? "");
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  if (info) name += ` ${String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL) ?? "")}`;
  return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(name);
}
