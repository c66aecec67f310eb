// Decoding of `{dtype, shape, buffer}` payloads sent by layerscope.wire (Python).
// ipywidgets hands binary frames over as DataViews into a larger ArrayBuffer: honour byteOffset,
// and copy when the offset is not aligned for the element type (typed arrays require it).

export type WireDtype =
  | "float64"
  | "float32"
  | "float16"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "bool";

export type NumericArray =
  | Float64Array
  | Float32Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array;

export type DecodedData = NumericArray | BigInt64Array | BigUint64Array;

export interface Payload {
  dtype: WireDtype;
  shape: number[];
  source?: string;
  buffer: DataView | ArrayBuffer | ArrayBufferView;
}

export interface Decoded {
  dtype: WireDtype;
  /** The dtype the user had (e.g. "bfloat16" arrives as float32). */
  source: string;
  shape: number[];
  /** float16 arrives widened to Float32Array (exactly); int64/uint64 as BigInt arrays (exact). */
  data: DecodedData;
}

const ITEMSIZE: Record<WireDtype, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
};

export function itemsize(dtype: WireDtype): number {
  const size = ITEMSIZE[dtype];
  if (size === undefined) throw new Error(`unknown wire dtype ${JSON.stringify(dtype)}`);
  return size;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function bytesOf(buffer: Payload["buffer"]): {
  buf: ArrayBufferLike;
  offset: number;
  length: number;
} {
  if (buffer instanceof ArrayBuffer) return { buf: buffer, offset: 0, length: buffer.byteLength };
  if (ArrayBuffer.isView(buffer)) {
    return { buf: buffer.buffer, offset: buffer.byteOffset, length: buffer.byteLength };
  }
  throw new Error("payload buffer is not binary (expected a DataView or ArrayBuffer)");
}

/** IEEE half to float, exact (every float16 is a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function decodeArray(p: Payload): Decoded {
  const size = itemsize(p.dtype);
  const n = numel(p.shape);
  let { buf, offset, length } = bytesOf(p.buffer);
  if (length !== n * size) {
    throw new Error(
      `payload of dtype ${p.dtype} and shape [${p.shape}] needs ${n * size} bytes, got ${length}`,
    );
  }
  if (offset % size !== 0) {
    // Unaligned view into the message: copy the bytes into a fresh, aligned buffer.
    buf = new Uint8Array(buf, offset, length).slice().buffer;
    offset = 0;
  }
  const source = p.source ?? p.dtype;
  const make = (data: DecodedData): Decoded => ({
    dtype: p.dtype,
    source,
    shape: [...p.shape],
    data,
  });
  switch (p.dtype) {
    case "float64":
      return make(new Float64Array(buf, offset, n));
    case "float32":
      return make(new Float32Array(buf, offset, n));
    case "float16": {
      const half = new Uint16Array(buf, offset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(half[i]);
      return make(out);
    }
    case "int8":
      return make(new Int8Array(buf, offset, n));
    case "int16":
      return make(new Int16Array(buf, offset, n));
    case "int32":
      return make(new Int32Array(buf, offset, n));
    case "int64":
      return make(new BigInt64Array(buf, offset, n));
    case "uint8":
    case "bool":
      return make(new Uint8Array(buf, offset, n));
    case "uint16":
      return make(new Uint16Array(buf, offset, n));
    case "uint32":
      return make(new Uint32Array(buf, offset, n));
    case "uint64":
      return make(new BigUint64Array(buf, offset, n));
  }
}

/** Values as doubles for colour mapping (int64 beyond 2^53 rounds here, never in the text). */
export function asFloat64(d: Decoded): Float64Array | Float32Array {
  if (d.data instanceof Float32Array || d.data instanceof Float64Array) return d.data;
  const out = new Float64Array(d.data.length);
  for (let i = 0; i < d.data.length; i++) out[i] = Number(d.data[i]);
  return out;
}

/** The exact text of element i (bigints stay exact; floats shortest round-trip in their dtype). */
export function elementText(d: Decoded, i: number): string {
  const v = d.data[i];
  if (typeof v === "bigint") return v.toString();
  if (d.dtype === "bool") return v ? "True" : "False";
  return formatExact(v, d.source);
}

export function formatExact(v: number, source: string): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  if (source === "float64" || (!source.startsWith("float") && source !== "bfloat16"))
    return String(v);
  // Shortest decimal that reads back to the same float32 (float16/bfloat16 values are float32s).
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number.parseFloat(s)) === v) return String(Number.parseFloat(s));
  }
  return String(v);
}

/** Encode a typed array as a payload (used by tests and by views that send data back). */
export function encodeArray(data: DecodedData, dtype: WireDtype, shape: number[]): Payload {
  if (numel(shape) !== data.length)
    throw new Error(`shape [${shape}] does not match ${data.length} values`);
  return { dtype, shape, buffer: new DataView(data.buffer, data.byteOffset, data.byteLength) };
}
