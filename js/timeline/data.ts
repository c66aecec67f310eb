// The timeline's frames (python/layerscope/widgets/timeline.py, `frames_payload`): every epoch of
// the selected layer as uint8 codes, decoded once into typed-array views; a frame repaints from
// them through a 256-entry colour table, without asking the kernel. A live run's new epochs come
// as a tail of rows (`frames_tail`) that `decodeFrames` joins to the payload it extends.
import { chooseScale, colorOf, type Scale } from "../core/colormap";
import { decodeArray, type Payload } from "../core/wire";
import { dequantize, type Quant } from "../tensor/quant";

export interface RawTensorFrames {
  name: string;
  shape: number[];
  codes: Payload;
  have: Payload;
  quant: Quant;
  diverging: boolean;
}

export interface RawFrames {
  /** Which whole payload this is: a tail names the one it extends. */
  rev?: number;
  layer?: string;
  /** "step" when the run's epoch() is called every N steps: the view counts steps then. */
  axis?: string;
  epochs?: Payload;
  steps?: Payload;
  param?: RawTensorFrames | null;
  act?: RawTensorFrames | null;
  hist?: { epochs: Payload; codes: Payload; quant: Quant; lo: number; hi: number } | null;
  grad?: { x: Payload; y: Payload } | null;
  ratio?: { x: Payload; y: Payload } | null;
}

/**
 * What a live run added since the whole payload `base` (the scrubber's `frames_tail`): the new
 * epochs' frame and histogram rows, and the small parts whole (they replace the payload's).
 */
export interface RawTail extends Pick<RawFrames, "epochs" | "steps" | "grad" | "ratio"> {
  base?: number;
  param?: { codes: Payload; have: Payload } | null;
  act?: { codes: Payload; have: Payload } | null;
  hist?: { epochs: Payload; codes: Payload } | null;
}

/** Rows `more` after rows `first` (both uint8, rows of the same length). */
function joinRows(first: Uint8Array, more: Payload): Uint8Array {
  const added = decodeArray(more).data as Uint8Array;
  const all = new Uint8Array(first.length + added.length);
  all.set(first);
  all.set(added, first.length);
  return all;
}

/** All epochs of one tensor: frame i is codes[i*h*w .. (i+1)*h*w). */
export class TensorFrames {
  readonly name: string;
  readonly shape: number[];
  readonly h: number;
  readonly w: number;
  readonly codes: Uint8Array;
  readonly have: Uint8Array;
  readonly quant: Quant;
  readonly scale: Scale;
  /** Code -> packed RGBA (little-endian ABGR in a Uint32), built once per payload. */
  readonly table: Uint32Array;
  /** Code -> value (for the readout). */
  readonly values: Float32Array;

  /** `more`: the rows a tail adds after the payload's, and which of all rows were read. */
  constructor(raw: RawTensorFrames, more?: { codes: Payload; have: Payload } | null) {
    const codes = decodeArray(raw.codes);
    this.name = raw.name;
    this.shape = raw.shape;
    [, this.h, this.w] = codes.shape;
    this.codes = codes.data as Uint8Array;
    this.have = decodeArray(raw.have).data as Uint8Array;
    if (more) {
      this.codes = joinRows(this.codes, more.codes);
      this.have = decodeArray(more.have).data as Uint8Array;
    }
    if (this.codes.length !== this.have.length * this.h * this.w)
      throw new Error(
        `${raw.name}: ${this.codes.length} codes for ${this.have.length} frames of ${this.h} x ${this.w}`,
      );
    this.quant = raw.quant;
    this.scale = chooseScale(
      { min: raw.quant.lo, max: raw.quant.hi },
      raw.diverging ? "diverging" : "sequential",
      raw.quant.lo,
      raw.quant.hi,
    );
    this.values = dequantize(
      Uint8Array.from({ length: 256 }, (_, i) => i),
      raw.quant,
    );
    this.table = codeTable(this.values, this.scale);
  }

  get count(): number {
    return this.have.length;
  }

  frame(i: number): Uint8Array {
    const n = this.h * this.w;
    return this.codes.subarray(i * n, (i + 1) * n);
  }
}

/** Packed RGBA of every code's value under `scale` (NaN/Inf in their own colours). */
export function codeTable(values: Float32Array, scale: Scale): Uint32Array {
  const out = new Uint32Array(256);
  for (let c = 0; c < 256; c++) {
    const [r, g, b] = colorOf(values[c], scale);
    out[c] = (255 << 24) | (b << 16) | (g << 8) | r;
  }
  return out;
}

/** One frame's codes into packed RGBA pixels (one pixel a cell): the whole repaint. */
export function paintCodes(codes: Uint8Array, table: Uint32Array, out: Uint32Array): void {
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i]];
}

export interface Curve {
  x: Float32Array;
  y: Float32Array;
}

export interface Histograms {
  epochs: Int32Array;
  codes: Uint8Array;
  bins: number;
  table: Uint32Array;
  lo: number;
  hi: number;
}

export interface Frames {
  layer: string;
  axis: "epoch" | "step";
  epochs: Int32Array;
  steps: Int32Array;
  param: TensorFrames | null;
  act: TensorFrames | null;
  hist: Histograms | null;
  grad: Curve | null;
  ratio: Curve | null;
}

function curve(raw: { x: Payload; y: Payload } | null | undefined): Curve | null {
  if (!raw) return null;
  return {
    x: decodeArray(raw.x).data as Float32Array,
    y: decodeArray(raw.y).data as Float32Array,
  };
}

/**
 * The frames a view shows: the whole payload, with the tail that extends it joined in (a tail of
 * another payload is ignored: the kernel sets both together).
 */
export function decodeFrames(
  whole: RawFrames | null | undefined,
  tail?: RawTail | null,
): Frames | null {
  const joined = !!whole && !!tail && tail.base !== undefined && tail.base === whole.rev;
  const raw: RawFrames | null | undefined = joined
    ? {
        ...whole,
        epochs: tail.epochs,
        steps: tail.steps,
        grad: tail.grad,
        ratio: tail.ratio,
      }
    : whole;
  if (!raw?.epochs || !raw.steps) return null;
  let hist: Histograms | null = null;
  if (raw.hist) {
    const codes = decodeArray(raw.hist.codes);
    const more = joined ? tail.hist : null;
    const values = dequantize(
      Uint8Array.from({ length: 256 }, (_, i) => i),
      raw.hist.quant,
    );
    const scale: Scale = {
      map: "viridis",
      lo: raw.hist.quant.lo,
      hi: raw.hist.quant.hi,
      diverging: false,
    };
    const bins = codes.shape[1] ?? 0;
    hist = {
      epochs: decodeArray((more ?? raw.hist).epochs).data as Int32Array,
      codes: more ? joinRows(codes.data as Uint8Array, more.codes) : (codes.data as Uint8Array),
      bins,
      table: codeTable(values, scale),
      lo: raw.hist.lo,
      hi: raw.hist.hi,
    };
    if (hist.codes.length !== hist.epochs.length * bins)
      throw new Error(
        `histograms: ${hist.codes.length} codes for ${hist.epochs.length} rows of ${bins}`,
      );
  }
  return {
    layer: raw.layer ?? "",
    axis: raw.axis === "step" ? "step" : "epoch",
    epochs: decodeArray(raw.epochs).data as Int32Array,
    steps: decodeArray(raw.steps).data as Int32Array,
    param: raw.param ? new TensorFrames(raw.param, joined ? tail.param : null) : null,
    act: raw.act ? new TensorFrames(raw.act, joined ? tail.act : null) : null,
    hist,
    grad: curve(raw.grad),
    ratio: curve(raw.ratio),
  };
}

/**
 * How the scrubber names recorded point i: "epoch 3", or, for a run whose epoch() is called every
 * N steps (axis "step"), the step it was taken at: "step 300".
 */
export function pointName(f: Pick<Frames, "axis" | "epochs" | "steps">, i: number): string {
  if (i < 0 || i >= f.epochs.length) return `${f.axis} –`;
  return f.axis === "step" ? `step ${f.steps[i]}` : `epoch ${f.epochs[i]}`;
}

/**
 * Where the curves' markers stand for recorded point i: the loss chart's at the last step before
 * it, the metrics chart's at its x, the epoch or, for a run recorded every N steps, its step (the
 * kernel's TimelineView._update_markers places them the same way).
 */
export function markerX(
  f: Pick<Frames, "axis" | "epochs" | "steps">,
  i: number,
): { loss: number; metric: number } {
  return {
    loss: Math.max(0, f.steps[i] - 1),
    metric: f.axis === "step" ? f.steps[i] : f.epochs[i],
  };
}

/** Index of `epoch` in `epochs`, else of the nearest recorded epoch (-1 when there is none). */
export function indexOfEpoch(epochs: ArrayLike<number>, epoch: number): number {
  let best = -1;
  let dist = Number.POSITIVE_INFINITY;
  for (let i = 0; i < epochs.length; i++) {
    const d = Math.abs(epochs[i] - epoch);
    if (d < dist) {
      dist = d;
      best = i;
    }
  }
  return best;
}

/** Recent repaint times (ms), bounded, with the median and 95th percentile. */
export class FrameTimes {
  readonly times: number[] = [];
  constructor(readonly size = 500) {}

  add(ms: number): void {
    this.times.push(ms);
    if (this.times.length > this.size) this.times.shift();
  }

  quantile(q: number): number {
    if (!this.times.length) return Number.NaN;
    const s = [...this.times].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))];
  }
}
