// Saliency for sequences (N, L, D), signals (N, C, L) and video (N, C, T, H, W), each in its
// natural form (see python/layerscope/widgets/saliency_kinds.py for the payloads):
// - sequence: a step x feature strip per method (steps left to right, features top to bottom)
//   under bars of the per-step totals;
// - signal: one channel as the waveform over the attribution's colour along time; several as the
//   channels x time image (low channels at the bottom, a spectrogram) with the map over it; the
//   per-step totals as bars under it;
// - video: the frame under the scrubber and each method's map over it (one scale for the clip),
//   and per-frame totals as bars (click one to go to that frame).

import { el } from "../core/dom";
import { shortNumber } from "../core/format";
import { decodeArray, formatExact, type Payload } from "../core/wire";
import { dequantize, type Quant } from "../tensor/quant";
import { composite, overlayColor, type SignMode } from "./paint";

export type ExtraKind = "sequence" | "signal" | "video";
export const EXTRA_KINDS: readonly string[] = ["sequence", "signal", "video"];

interface Coded {
  codes: Payload;
  quant: Quant;
  max_abs: number;
}

export interface KindMap extends Coded {
  totals?: Coded;
}

export interface KindSample {
  grid?: number[];
  input?: Coded;
  wave?: Payload;
  image?: Payload;
  frames?: Payload;
  maps: Record<string, KindMap>;
}

export interface KindState {
  kind: ExtraKind;
  shape: number[];
  methods: string[];
  mode: SignMode;
  opacity: number;
  frame: number;
  setFrame: (t: number) => void;
  readout: (text: string) => void;
}

const STRIP_PX = 448;
const BARS_PX = 40;
const WAVE_PX = 96;
const FRAME_PX = 224;

export const KIND_CSS = `
.ls-saliency .ls-kind-panel { display: flex; flex-direction: column; gap: 2px; margin: 0 0 8px 0; }
.ls-saliency .ls-kind-panel canvas { width: ${STRIP_PX}px; image-rendering: pixelated; display: block;
  border: 1px solid var(--jp-border-color2, #e0e0e0); }
.ls-saliency .ls-kind-panel canvas.ls-bars { height: ${BARS_PX}px; image-rendering: pixelated; }
.ls-saliency .ls-frames { display: flex; flex-wrap: wrap; gap: 10px; }
.ls-saliency .ls-frames canvas { width: ${FRAME_PX}px; }
.ls-saliency .ls-scrub { display: flex; gap: 8px; align-items: center; margin: 0 0 6px 0; }
.ls-saliency .ls-scrub input[type=range] { width: 240px; }
`;

function decodeCoded(m: Coded): Float32Array {
  return dequantize(decodeArray(m.codes).data as Uint8Array, m.quant);
}

function canvas(w: number, h: number, cssHeight: number, className = ""): HTMLCanvasElement {
  const cv = el("canvas", className);
  cv.width = Math.max(1, w);
  cv.height = Math.max(1, h);
  cv.style.height = `${cssHeight}px`;
  return cv;
}

/** Signed bars of `values` (one per column), baseline in the middle; `mark` outlines one bar. */
export function paintBars(
  cv: HTMLCanvasElement,
  values: ArrayLike<number>,
  maxAbs: number,
  mode: SignMode,
  mark = -1,
): void {
  const n = values.length;
  const scale = 4; // device pixels per bar at least, so thin bars stay visible
  cv.width = Math.max(1, n * scale);
  cv.height = BARS_PX;
  const ctx = cv.getContext("2d");
  if (!ctx) return;
  ctx.clearRect(0, 0, cv.width, cv.height);
  const mid = mode === "signed" ? BARS_PX / 2 : BARS_PX - 1;
  const half = mode === "signed" ? BARS_PX / 2 - 1 : BARS_PX - 2;
  ctx.fillStyle = "rgba(128,128,128,0.5)";
  ctx.fillRect(0, Math.floor(mid), cv.width, 1);
  const m = maxAbs > 0 ? maxAbs : 1;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const [c] = overlayColor(v, m, mode);
    ctx.fillStyle = `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
    if (!Number.isFinite(v)) {
      ctx.fillRect(i * scale, 0, scale, BARS_PX);
      continue;
    }
    const mag = (mode === "signed" ? v : Math.abs(v)) / m;
    const len = Math.max(1, Math.round(Math.abs(mag) * half));
    ctx.fillRect(i * scale, mag >= 0 ? mid - len : mid, scale, len);
  }
  if (mark >= 0 && mark < n) {
    ctx.strokeStyle = "rgba(0,0,0,0.8)";
    ctx.lineWidth = 1;
    ctx.strokeRect(mark * scale + 0.5, 0.5, scale - 1, BARS_PX - 1);
  }
}

/** The map as colours alone (no input under it), `rows` x `cols`, flipped vertically if asked. */
function paintMap(
  cv: HTMLCanvasElement,
  values: Float32Array,
  rows: number,
  cols: number,
  maxAbs: number,
  mode: SignMode,
  image?: Uint8Array,
  opacity = 1,
  flip = false,
): void {
  const ctx = cv.getContext("2d");
  if (!ctx) return;
  const out = ctx.createImageData(cols, rows);
  const vals = flip ? flipRows(values, rows, cols) : values;
  const img = image && flip ? flipRows(image, rows, cols) : image;
  composite(img as Uint8Array | undefined, 1, vals, maxAbs, mode, img ? opacity : 1, out.data);
  ctx.putImageData(out, 0, 0);
}

function flipRows<T extends Float32Array | Uint8Array>(a: T, rows: number, cols: number): T {
  const out = new (a.constructor as { new (n: number): T })(a.length);
  for (let r = 0; r < rows; r++)
    out.set(a.subarray(r * cols, (r + 1) * cols), (rows - 1 - r) * cols);
  return out;
}

function caption(text: string): HTMLElement {
  return el("div", "ls-caption", text);
}

function scaleText(name: string, m: KindMap | Coded, mode: SignMode): string {
  return `${name}  (${mode === "signed" ? "blue < 0 < red" : "|attribution|"}, |max| ${shortNumber(m.max_abs)})`;
}

function hover(
  cv: HTMLCanvasElement,
  rows: number,
  cols: number,
  describe: (r: number, c: number) => string,
  readout: (t: string) => void,
): void {
  cv.addEventListener("mousemove", (e) => {
    const rect = cv.getBoundingClientRect();
    const c = Math.floor(((e.clientX - rect.left) / rect.width) * cols);
    const r = Math.floor(((e.clientY - rect.top) / rect.height) * rows);
    if (r >= 0 && c >= 0 && r < rows && c < cols) readout(describe(r, c));
  });
  cv.addEventListener("mouseleave", () => readout(""));
}

/** Renders one sample of a sequence, signal or video input into `host` (replacing its content). */
export function renderKind(host: HTMLElement, state: KindState, s: KindSample | undefined): void {
  host.replaceChildren();
  host.dataset.kind = state.kind;
  if (!s) return;
  if (state.kind === "sequence") renderSequence(host, state, s);
  else if (state.kind === "signal") renderSignal(host, state, s);
  else renderVideo(host, state, s);
}

function renderSequence(host: HTMLElement, st: KindState, s: KindSample): void {
  const [steps, feats] = s.grid ?? [st.shape[1], st.shape[2]];
  const [L, D] = [st.shape[1], st.shape[2]];
  const cssH = Math.max(48, Math.min(220, feats * 6));
  const panels: [string, Coded, Coded | undefined][] = [];
  if (s.input) panels.push(["input", s.input, undefined]);
  for (const name of st.methods) {
    const m = s.maps[name];
    if (m) panels.push([name, m, m.totals]);
  }
  for (const [name, m, totals] of panels) {
    const p = el("div", "ls-kind-panel");
    p.dataset.method = name;
    const values = decodeCoded(m);
    // stored (steps, feats) row-major; drawn transposed: steps along x, features along y
    const t = new Float32Array(values.length);
    for (let i = 0; i < steps; i++)
      for (let j = 0; j < feats; j++) t[j * steps + i] = values[i * feats + j];
    const strip = canvas(steps, feats, cssH, "ls-strip");
    paintMap(strip, t, feats, steps, m.max_abs, name === "input" ? "signed" : st.mode);
    hover(
      strip,
      feats,
      steps,
      (r, c) =>
        `${name} step ${Math.floor((c * L) / steps)} feature ${Math.floor((r * D) / feats)} ≈ ${formatExact(t[r * steps + c], "float32")}`,
      st.readout,
    );
    p.append(
      caption(name === "input" ? `input: ${L} steps x ${D} features` : scaleText(name, m, st.mode)),
    );
    if (totals) {
      const tv = decodeCoded(totals);
      const bars = canvas(tv.length, BARS_PX, BARS_PX, "ls-bars");
      paintBars(bars, tv, totals.max_abs, st.mode);
      bars.title = "per-step total (sum over features)";
      hover(
        bars,
        1,
        tv.length,
        (_r, c) =>
          `${name} step ${Math.floor((c * L) / tv.length)} total ≈ ${formatExact(tv[c], "float32")}`,
        st.readout,
      );
      p.append(el("div", "ls-muted", "per-step totals"), bars);
    }
    p.append(strip);
    host.append(p);
  }
}

function renderSignal(host: HTMLElement, st: KindState, s: KindSample): void {
  const [rows, cols] = s.grid ?? [st.shape[1], st.shape[2]];
  const [C, L] = [st.shape[1], st.shape[2]];
  const wave = s.wave ? (decodeArray(s.wave).data as Float32Array) : undefined;
  const image = s.image ? (decodeArray(s.image).data as Uint8Array) : undefined;
  const input = el("div", "ls-kind-panel");
  input.dataset.method = "input";
  if (wave) {
    const cv = canvas(cols * 2, WAVE_PX, WAVE_PX, "ls-wave");
    paintWave(cv, wave, undefined, 0, st.mode);
    input.append(caption(`input: signal, ${L} steps`), cv);
  } else if (image) {
    const cv = canvas(cols, rows, Math.max(64, Math.min(200, rows * 4)), "ls-spec");
    const ctx = cv.getContext("2d");
    if (ctx) {
      const out = ctx.createImageData(cols, rows);
      const flipped = flipRows(image, rows, cols);
      for (let i = 0; i < rows * cols; i++) {
        out.data[i * 4] = out.data[i * 4 + 1] = out.data[i * 4 + 2] = flipped[i];
        out.data[i * 4 + 3] = 255;
      }
      ctx.putImageData(out, 0, 0);
    }
    input.append(caption(`input: ${C} channels x ${L} steps (channel 0 at the bottom)`), cv);
  }
  host.append(input);
  for (const name of st.methods) {
    const m = s.maps[name];
    if (!m) continue;
    const values = decodeCoded(m);
    const p = el("div", "ls-kind-panel");
    p.dataset.method = name;
    p.append(caption(scaleText(name, m, st.mode)));
    if (wave) {
      const cv = canvas(cols * 2, WAVE_PX, WAVE_PX, "ls-wave");
      paintWave(cv, wave, values, m.max_abs, st.mode);
      hover(
        cv,
        1,
        cols,
        (_r, c) =>
          `${name} step ${Math.floor((c * L) / cols)} ≈ ${formatExact(values[c], "float32")}`,
        st.readout,
      );
      p.append(cv);
    } else {
      const cv = canvas(cols, rows, Math.max(64, Math.min(200, rows * 4)), "ls-spec");
      paintMap(cv, values, rows, cols, m.max_abs, st.mode, image, st.opacity, true);
      hover(
        cv,
        rows,
        cols,
        (r, c) =>
          `${name} channel ${Math.floor(((rows - 1 - r) * C) / rows)} step ${Math.floor((c * L) / cols)} ≈ ${formatExact(values[(rows - 1 - r) * cols + c], "float32")}`,
        st.readout,
      );
      p.append(cv);
    }
    if (m.totals) {
      const tv = decodeCoded(m.totals);
      const bars = canvas(tv.length, BARS_PX, BARS_PX, "ls-bars");
      paintBars(bars, tv, m.totals.max_abs, st.mode);
      p.append(bars);
    }
    host.append(p);
  }
}

/** The waveform (a dark line) over the attribution's colour along time (full-height columns). */
export function paintWave(
  cv: HTMLCanvasElement,
  wave: Float32Array,
  values: Float32Array | undefined,
  maxAbs: number,
  mode: SignMode,
): void {
  const ctx = cv.getContext("2d");
  if (!ctx) return;
  const n = wave.length;
  const w = cv.width;
  const h = cv.height;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  if (values) {
    const colW = w / n;
    for (let i = 0; i < n; i++) {
      const [c, weight] = overlayColor(values[i], maxAbs, mode);
      ctx.fillStyle = `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${Number.isFinite(values[i]) ? 0.15 + 0.85 * weight : 1})`;
      ctx.fillRect(Math.floor(i * colW), 0, Math.ceil(colW), h);
    }
  }
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of wave) {
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!(hi > lo)) {
    lo -= 1;
    hi += 1;
  }
  ctx.strokeStyle = "#222";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const x = ((i + 0.5) / n) * w;
    const y = h - 4 - ((wave[i] - lo) / (hi - lo)) * (h - 8);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  ctx.stroke();
}

function renderVideo(host: HTMLElement, st: KindState, s: KindSample): void {
  if (!s.frames) return;
  const frames = decodeArray(s.frames);
  const [T, h, w, c] = frames.shape;
  const t = Math.max(0, Math.min(T - 1, st.frame));
  const pixels = frames.data as Uint8Array;
  const frame = pixels.subarray(t * h * w * c, (t + 1) * h * w * c);
  const scrub = el("div", "ls-scrub");
  const range = el("input", "ls-frame");
  range.type = "range";
  range.min = "0";
  range.max = String(T - 1);
  range.step = "1";
  range.value = String(t);
  range.addEventListener("input", () => st.setFrame(Number(range.value)));
  scrub.append(
    el("span", "", "frame"),
    range,
    el("span", "ls-mono ls-frame-label", `${t} / ${T - 1}`),
  );
  host.append(scrub);
  host.dataset.frame = String(t);
  const row = el("div", "ls-frames");
  const cssH = Math.round((FRAME_PX * h) / w);
  const input = el("div", "ls-panel");
  input.dataset.method = "input";
  const icv = canvas(w, h, cssH);
  const ictx = icv.getContext("2d");
  if (ictx) {
    const out = ictx.createImageData(w, h);
    for (let k = 0; k < w * h; k++) {
      out.data[k * 4] = frame[k * c];
      out.data[k * 4 + 1] = frame[k * c + (c === 3 ? 1 : 0)];
      out.data[k * 4 + 2] = frame[k * c + (c === 3 ? 2 : 0)];
      out.data[k * 4 + 3] = 255;
    }
    ictx.putImageData(out, 0, 0);
  }
  input.append(caption(`frame ${t}`), icv);
  row.append(input);
  const bars: HTMLElement[] = [];
  for (const name of st.methods) {
    const m = s.maps[name];
    if (!m) continue;
    const values = decodeCoded(m).subarray(t * h * w, (t + 1) * h * w);
    const p = el("div", "ls-panel");
    p.dataset.method = name;
    const cv = canvas(w, h, cssH);
    const ctx = cv.getContext("2d");
    if (ctx) {
      const out = ctx.createImageData(w, h);
      composite(frame, c, values, m.max_abs, st.mode, st.opacity, out.data);
      ctx.putImageData(out, 0, 0);
    }
    hover(
      cv,
      h,
      w,
      (r, col) =>
        `${name} frame ${t} [${r}, ${col}] ≈ ${formatExact(values[r * w + col], "float32")}`,
      st.readout,
    );
    p.append(caption(scaleText(name, m, st.mode)), cv);
    row.append(p);
    if (m.totals) {
      const tv = decodeCoded(m.totals);
      const b = canvas(tv.length, BARS_PX, BARS_PX, "ls-bars");
      paintBars(b, tv, m.totals.max_abs, st.mode, t);
      b.style.cursor = "pointer";
      b.title = "per-frame total: click a bar to show that frame";
      b.addEventListener("click", (e) => {
        const r = b.getBoundingClientRect();
        st.setFrame(Math.max(0, Math.min(T - 1, Math.floor(((e.clientX - r.left) / r.width) * T))));
      });
      const wrap = el("div", "ls-kind-panel");
      wrap.dataset.method = name;
      wrap.append(el("div", "ls-muted", `${name}: per-frame totals`), b);
      bars.push(wrap);
    }
  }
  host.append(row, ...bars);
}
