import { describe, expect, it } from "vitest";
import {
  decodeArray,
  elementText,
  encodeArray,
  formatExact,
  halfToFloat,
  type WireDtype,
} from "./wire";

const CASES: [WireDtype, () => ArrayLike<number | bigint> & { buffer: ArrayBufferLike }][] = [
  [
    "float64",
    () =>
      new Float64Array([
        1.5,
        -2,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        0.1,
      ]),
  ],
  [
    "float32",
    () =>
      new Float32Array([
        1.5,
        -2,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        0.1,
      ]),
  ],
  ["int8", () => new Int8Array([-128, -1, 0, 1, 2, 127])],
  ["int16", () => new Int16Array([-32768, -1, 0, 1, 2, 32767])],
  ["int32", () => new Int32Array([-(2 ** 31), -1, 0, 1, 2, 2 ** 31 - 1])],
  ["int64", () => new BigInt64Array([-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n, 2n ** 63n - 1n])],
  ["uint8", () => new Uint8Array([0, 1, 2, 3, 254, 255])],
  ["uint16", () => new Uint16Array([0, 1, 2, 3, 65534, 65535])],
  ["uint32", () => new Uint32Array([0, 1, 2, 3, 2 ** 32 - 2, 2 ** 32 - 1])],
  ["uint64", () => new BigUint64Array([0n, 1n, 2n, 3n, 2n ** 53n + 1n, 2n ** 64n - 1n])],
  ["bool", () => new Uint8Array([0, 1, 1, 0, 0, 1])],
];

/** Copy `bytes` into a larger buffer at `offset`, as a message frame would hold them. */
function inFrame(bytes: Uint8Array, offset: number): DataView {
  const frame = new Uint8Array(offset + bytes.byteLength + 3);
  frame.set(bytes, offset);
  return new DataView(frame.buffer, offset, bytes.byteLength);
}

describe("decodeArray", () => {
  for (const [dtype, make] of CASES) {
    for (const offset of [0, 1, 3, 8]) {
      it(`round-trips ${dtype} at byteOffset ${offset}`, () => {
        const src = make();
        const payload = encodeArray(src as never, dtype, [2, 3]);
        const bytes = new Uint8Array((payload.buffer as DataView).buffer.slice(0));
        const decoded = decodeArray({ dtype, shape: [2, 3], buffer: inFrame(bytes, offset) });
        expect(decoded.shape).toEqual([2, 3]);
        expect(Array.from(decoded.data as ArrayLike<number | bigint>)).toEqual(Array.from(src));
      });
    }
  }

  it("keeps int64 beyond 2^53 exact in the text", () => {
    const src = new BigInt64Array([2n ** 53n + 1n]);
    const d = decodeArray({ dtype: "int64", shape: [], buffer: new DataView(src.buffer) });
    expect(d.shape).toEqual([]);
    expect(elementText(d, 0)).toBe("9007199254740993");
  });

  it("decodes empty and 0-d arrays", () => {
    const empty = decodeArray({
      dtype: "float32",
      shape: [0, 5],
      buffer: new DataView(new ArrayBuffer(0)),
    });
    expect(empty.data.length).toBe(0);
    const scalar = decodeArray({
      dtype: "float64",
      shape: [],
      buffer: new Float64Array([3.25]).buffer,
    });
    expect(Array.from(scalar.data as Float64Array)).toEqual([3.25]);
  });

  it("widens float16 exactly, NaN and Inf included", () => {
    // 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), NaN, +Inf, -Inf
    const half = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7e00, 0x7c00, 0xfc00]);
    const d = decodeArray({
      dtype: "float16",
      shape: [7],
      buffer: inFrame(new Uint8Array(half.buffer), 1),
    });
    expect(Array.from(d.data as Float32Array)).toEqual([
      1,
      -2,
      65504,
      2 ** -24,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
    expect(halfToFloat(0x8000)).toBe(-0);
  });

  it("rejects a buffer whose size does not match the shape", () => {
    expect(() => decodeArray({ dtype: "float32", shape: [3], buffer: new ArrayBuffer(8) })).toThrow(
      /needs 12 bytes, got 8/,
    );
    expect(() =>
      decodeArray({ dtype: "complex64" as WireDtype, shape: [1], buffer: new ArrayBuffer(8) }),
    ).toThrow(/unknown wire dtype/);
  });
});

describe("formatExact", () => {
  it("prints the shortest text that reads back to the same float32", () => {
    expect(formatExact(Math.fround(0.1), "float32")).toBe("0.1");
    expect(formatExact(Math.fround(1 / 3), "float32")).toBe("0.33333334");
    expect(formatExact(0.1, "float64")).toBe("0.1");
    expect(formatExact(Number.NaN, "float32")).toBe("NaN");
    expect(formatExact(Number.NEGATIVE_INFINITY, "float64")).toBe("-Inf");
  });
});
