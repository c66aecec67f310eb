import { describe, expect, it } from "vitest";
import { colorOf } from "../core/colormap";
import {
  codeTable,
  decodeFrames,
  FrameTimes,
  indexOfEpoch,
  markerX,
  paintCodes,
  pointName,
} from "./data";

const quant = { lo: -1, hi: 1, log: false, levels: 250 };

type Typed = new (d: ArrayLike<number>) => { buffer: ArrayBufferLike };

function payload(dtype: string, shape: number[], data: ArrayLike<number>, T: Typed) {
  const a = new T(data);
  return { dtype, shape, buffer: new DataView(a.buffer as ArrayBuffer) } as never;
}

describe("timeline frames", () => {
  const codes = [0, 125, 250, 252, 250, 125, 0, 253];
  const raw = {
    layer: "fc",
    epochs: payload("int32", [2], [0, 1], Int32Array),
    steps: payload("int32", [2], [10, 20], Int32Array),
    param: {
      name: "fc.weight",
      shape: [2, 2],
      codes: payload("uint8", [2, 2, 2], codes, Uint8Array),
      have: payload("uint8", [2], [1, 1], Uint8Array),
      quant,
      diverging: true,
    },
    grad: {
      x: payload("float32", [2], [0, 1], Float32Array),
      y: payload("float32", [2], [1, 2], Float32Array),
    },
  };

  it("decodes every epoch's frame and paints it through the code table", () => {
    const f = decodeFrames(raw);
    expect(f).not.toBeNull();
    const p = f?.param;
    expect(p?.h).toBe(2);
    expect(p?.w).toBe(2);
    expect(Array.from(p?.frame(1) ?? [])).toEqual([250, 125, 0, 253]);
    const out = new Uint32Array(4);
    paintCodes(p?.frame(0) as Uint8Array, p?.table as Uint32Array, out);
    const rgba = new Uint8Array(out.buffer);
    // code 0 is lo = -1: the diverging map's low end; 252 is NaN (magenta).
    expect(Array.from(rgba.slice(0, 3))).toEqual(Array.from(colorOf(-1, p?.scale as never)));
    expect(Array.from(rgba.slice(12, 15))).toEqual([255, 0, 255]);
    expect(rgba[3]).toBe(255);
    expect(f?.grad?.y[1]).toBe(2);
    expect(f?.act).toBeNull();
  });

  it("joins a live run's tail of new rows to the payload it extends, and only to that one", () => {
    const tail = {
      base: 7,
      epochs: payload("int32", [3], [0, 1, 2], Int32Array),
      steps: payload("int32", [3], [10, 20, 30], Int32Array),
      param: {
        codes: payload("uint8", [1, 2, 2], [9, 8, 7, 6], Uint8Array),
        have: payload("uint8", [3], [1, 0, 1], Uint8Array),
      },
      hist: {
        epochs: payload("int32", [3], [0, 1, 2], Int32Array),
        codes: payload("uint8", [1, 3], [5, 6, 7], Uint8Array),
      },
    };
    const hist = {
      epochs: payload("int32", [2], [0, 1], Int32Array),
      codes: payload("uint8", [2, 3], [0, 1, 2, 3, 4, 5], Uint8Array),
      quant,
      lo: -2,
      hi: 2,
    };
    const f = decodeFrames({ ...raw, hist, rev: 7 }, tail);
    expect(Array.from(f?.epochs ?? [])).toEqual([0, 1, 2]);
    expect(Array.from(f?.steps ?? [])).toEqual([10, 20, 30]);
    expect(f?.param?.count).toBe(3);
    expect(Array.from(f?.param?.frame(1) ?? [])).toEqual([250, 125, 0, 253]);
    expect(Array.from(f?.param?.frame(2) ?? [])).toEqual([9, 8, 7, 6]);
    expect(Array.from(f?.param?.have ?? [])).toEqual([1, 0, 1]);
    expect(f?.grad).toBeNull(); // the tail's curves replace the payload's
    expect(Array.from(f?.hist?.epochs ?? [])).toEqual([0, 1, 2]);
    expect(Array.from(f?.hist?.codes ?? [])).toEqual([0, 1, 2, 3, 4, 5, 5, 6, 7]);
    expect([f?.hist?.bins, f?.hist?.lo, f?.hist?.hi]).toEqual([3, -2, 2]);
    // A tail of another payload (the kernel has sent a new one since) is not joined.
    const other = decodeFrames({ ...raw, hist, rev: 8 }, tail);
    expect(Array.from(other?.epochs ?? [])).toEqual([0, 1]);
    expect(other?.param?.count).toBe(2);
    expect(other?.hist?.codes.length).toBe(6);
    expect(Array.from(decodeFrames(raw, {})?.epochs ?? [])).toEqual([0, 1]);
    // Rows that do not add up to the frames named is an error, never a shifted picture.
    const short = {
      ...tail,
      param: { ...tail.param, have: payload("uint8", [4], [1, 1, 1, 1], Uint8Array) },
    };
    expect(() => decodeFrames({ ...raw, rev: 7 }, short)).toThrow(/4 frames of 2 x 2/);
  });

  it("code tables map every code to an opaque colour", () => {
    const values = new Float32Array(256).map((_, i) => i / 255);
    const t = codeTable(values, { map: "viridis", lo: 0, hi: 1, diverging: false });
    expect(t.length).toBe(256);
    expect(Array.from(t).every((v) => v >>> 24 === 255)).toBe(true);
  });

  it("finds the nearest recorded epoch and keeps bounded frame times", () => {
    expect(indexOfEpoch([0, 2, 5], 5)).toBe(2);
    expect(indexOfEpoch([0, 2, 5], 3)).toBe(1);
    expect(indexOfEpoch([], 3)).toBe(-1);
    const times = new FrameTimes(3);
    for (const v of [5, 1, 2, 3]) times.add(v);
    expect(times.times).toEqual([1, 2, 3]);
    expect(times.quantile(0.5)).toBe(2);
    expect(decodeFrames({})).toBeNull();
  });
});

describe("the scrubber's axis", () => {
  const epochs = Int32Array.from([0, 1, 2]);
  const steps = Int32Array.from([100, 200, 300]);
  it("names a point by its epoch, or by its step for a run recorded every N steps", () => {
    expect(pointName({ axis: "epoch", epochs, steps }, 1)).toBe("epoch 1");
    expect(pointName({ axis: "step", epochs, steps }, 1)).toBe("step 200");
    expect(pointName({ axis: "step", epochs, steps }, 3)).toBe("step –");
  });
  it("puts the metrics marker at the point's step on a step axis, not at its epoch number", () => {
    expect(markerX({ axis: "epoch", epochs, steps }, 1)).toEqual({ loss: 199, metric: 1 });
    expect(markerX({ axis: "step", epochs, steps }, 1)).toEqual({ loss: 199, metric: 200 });
    expect(markerX({ axis: "step", epochs, steps: Int32Array.from([0]) }, 0).loss).toBe(0);
  });
  it("reads the axis from the frames (epoch when absent or unknown)", () => {
    const raw = (axis?: string) => ({
      axis,
      epochs: { dtype: "int32", shape: [1], buffer: new DataView(new Int32Array([0]).buffer) },
      steps: { dtype: "int32", shape: [1], buffer: new DataView(new Int32Array([5]).buffer) },
    });
    expect(decodeFrames(raw("step") as never)?.axis).toBe("step");
    expect(decodeFrames(raw() as never)?.axis).toBe("epoch");
    expect(decodeFrames(raw("weeks") as never)?.axis).toBe("epoch");
  });
});
