import { describe, expect, it } from "vitest";
import {
  chooseScale,
  colorOf,
  LUT_SIZE,
  lut,
  NAN_RGB,
  NEGINF_RGB,
  POSINF_RGB,
  paint,
} from "./colormap";

describe("chooseScale", () => {
  it("is diverging and symmetric around 0 for signed data", () => {
    const s = chooseScale({ min: -1, max: 3 }, "auto", null, null);
    expect(s).toMatchObject({ map: "rdbu", lo: -3, hi: 3, diverging: true });
  });
  it("is sequential for non-negative data", () => {
    expect(chooseScale({ min: 0, max: 2 }, "auto", null, null)).toMatchObject({
      map: "viridis",
      lo: 0,
      hi: 2,
    });
  });
  it("never has a zero-width range (all-equal, all-NaN)", () => {
    const equal = chooseScale({ min: 5, max: 5 }, "auto", null, null);
    expect(equal.hi).toBeGreaterThan(equal.lo);
    const nan = chooseScale({ min: null, max: null }, "auto", null, null);
    expect(nan.hi).toBeGreaterThan(nan.lo);
    expect(Number.isFinite(nan.lo)).toBe(true);
  });
  it("lets vmin/vmax win", () => {
    expect(chooseScale({ min: -1, max: 1 }, "auto", -10, 2)).toMatchObject({ lo: -10, hi: 2 });
  });
});

describe("colours", () => {
  it("maps the ends and centre of the diverging map", () => {
    const s = chooseScale({ min: -1, max: 1 }, "auto", null, null);
    expect(colorOf(-1, s)).toEqual([5, 48, 97]);
    expect(colorOf(1, s)).toEqual([103, 0, 31]);
    expect(colorOf(0, s)).toEqual([247, 247, 247]);
    expect(colorOf(-100, s)).toEqual([5, 48, 97]); // clipped
    // Above the range: the top colour (this once read past the table and painted black), also
    // for values whose index would overflow a 32-bit integer.
    expect(colorOf(1.5, s)).toEqual([103, 0, 31]);
    expect(colorOf(3e9, s)).toEqual([103, 0, 31]);
    expect(colorOf(-3e9, s)).toEqual([5, 48, 97]);
    expect(colorOf(Number.MAX_VALUE, s)).toEqual([103, 0, 31]);
  });
  it("paints a whole array as it paints each value", () => {
    const s = chooseScale({ min: -2, max: 5 }, "viridis", null, null);
    const values = Float32Array.from([-3, -2, 0, 1.25, 5, 9, Number.NaN, Number.POSITIVE_INFINITY]);
    const out = new Uint8ClampedArray(values.length * 4);
    paint(values, s, out);
    values.forEach((v, i) => {
      expect([...out.slice(i * 4, i * 4 + 3)]).toEqual(colorOf(v, s));
      expect(out[i * 4 + 3]).toBe(255);
    });
    // A sub-array at an odd byte offset is painted too.
    const backing = new Uint8ClampedArray(values.length * 4 + 1);
    const odd = backing.subarray(1);
    paint(values, s, odd);
    expect([...odd]).toEqual([...out]);
  });
  it("gives NaN and +/-Inf their own colours, not in any map", () => {
    const s = chooseScale({ min: 0, max: 1 }, "viridis", null, null);
    expect(colorOf(Number.NaN, s)).toEqual(NAN_RGB);
    expect(colorOf(Number.POSITIVE_INFINITY, s)).toEqual(POSINF_RGB);
    expect(colorOf(Number.NEGATIVE_INFINITY, s)).toEqual(NEGINF_RGB);
    for (const name of ["viridis", "rdbu", "magma", "gray"]) {
      const table = lut(name);
      for (let i = 0; i < LUT_SIZE; i++) {
        const c = [table[i * 3], table[i * 3 + 1], table[i * 3 + 2]];
        expect(c).not.toEqual([...NAN_RGB]);
      }
    }
  });
  it("rejects unknown maps by name", () => {
    expect(() => lut("jet")).toThrow(/unknown colour map "jet"/);
  });
});
