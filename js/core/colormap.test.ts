import { describe, expect, it } from "vitest";
import { chooseScale, colorOf, LUT_SIZE, lut, NAN_RGB, NEGINF_RGB, POSINF_RGB } from "./colormap";

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
