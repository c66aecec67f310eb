import { describe, expect, it } from "vitest";
import { lut } from "../core/colormap";
import { chunks, composite, lightText, overlayColor, tokenBackground } from "./paint";

describe("overlay colours", () => {
  it("signed: the ends of the diverging map, weight by magnitude", () => {
    const rdbu = lut("rdbu");
    const [hi, wHi] = overlayColor(2, 2, "signed");
    expect([...hi]).toEqual([rdbu[254 * 3], rdbu[254 * 3 + 1], rdbu[254 * 3 + 2]]);
    expect(wHi).toBe(1);
    const [lo, wLo] = overlayColor(-1, 2, "signed");
    expect(wLo).toBe(0.5);
    expect(lo[2]).toBeGreaterThan(lo[0]); // blue side
  });
  it("absolute: |v| on the sequential map", () => {
    const [a] = overlayColor(-2, 2, "absolute");
    const [b] = overlayColor(2, 2, "absolute");
    expect(a).toEqual(b);
  });
  it("NaN and Inf keep their own colours at full weight", () => {
    expect(overlayColor(Number.NaN, 1, "signed")).toEqual([[255, 0, 255], 1]);
    expect(overlayColor(Number.POSITIVE_INFINITY, 1, "signed")[0]).toEqual([0, 255, 0]);
  });
  it("a zero range does not divide by zero", () => {
    expect(overlayColor(0, 0, "signed")[1]).toBe(0);
  });
});

describe("composite", () => {
  it("weak attribution leaves the image, strong covers it by the opacity", () => {
    const image = new Uint8Array([100, 100, 100, 100, 100, 100]);
    const out = new Uint8ClampedArray(8);
    composite(image, 3, [0, 4], 4, "signed", 0.5, out);
    expect([...out.slice(0, 4)]).toEqual([100, 100, 100, 255]);
    const [c] = overlayColor(4, 4, "signed");
    expect(out[4]).toBe(Math.round(100 * 0.5 + c[0] * 0.5));
    composite(image, 3, [0, 4], 4, "signed", 0, out);
    expect([...out.slice(4, 8)]).toEqual([100, 100, 100, 255]);
  });
  it("grayscale images use one channel", () => {
    const out = new Uint8ClampedArray(4);
    composite(new Uint8Array([7]), 1, [0], 1, "absolute", 1, out);
    expect([...out]).toEqual([7, 7, 7, 255]);
  });
});

describe("tokens", () => {
  it("background alpha grows with magnitude", () => {
    expect(tokenBackground(0, 1, "signed")).toMatch(/, 0\.000\)$/);
    expect(tokenBackground(1, 1, "signed")).toMatch(/, 0\.850\)$/);
  });
  it("light text on dark, opaque backgrounds only", () => {
    expect(lightText(1, 1, "signed")).toBe(true); // dark red
    expect(lightText(-1, 1, "signed")).toBe(true); // dark blue
    expect(lightText(0.1, 1, "signed")).toBe(false); // nearly transparent
    expect(lightText(1, 1, "absolute")).toBe(false); // magma's light end
  });
  it("chunks cover every token once", () => {
    expect(chunks(5, 2)).toEqual([
      [0, 2],
      [2, 4],
      [4, 5],
    ]);
    expect(chunks(0, 256)).toEqual([]);
  });
});
