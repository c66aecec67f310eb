import { describe, expect, it } from "vitest";
import { mergeBins } from "./histogram";
import { dequantize, NAN, NEGINF, POSINF, ZERO } from "./quant";
import { percentile, viewScale } from "./scale";
import { sortOrder } from "./table";
import { boxWin, clampWin, fullWindow, niceTicks, panBy, tileRequest, zoomAt } from "./viewport";

describe("viewport", () => {
  it("zooms around the pointer, keeping that cell under it", () => {
    const w = zoomAt(fullWindow(1000, 2000), 0.5, 0.25, 0.5, 1000, 2000);
    expect(w.c1 - w.c0).toBeCloseTo(1000);
    expect(w.c0 + 0.25 * (w.c1 - w.c0)).toBeCloseTo(500);
    expect(w.r0 + 0.5 * (w.r1 - w.r0)).toBeCloseTo(500);
  });
  it("never leaves the tensor nor shrinks below MIN_CELLS", () => {
    let w = fullWindow(10, 10);
    for (let i = 0; i < 50; i++) w = zoomAt(w, 0.5, 1, 1, 10, 10);
    expect(w.r1 - w.r0).toBe(2);
    expect(w.r1).toBe(10);
    const out = zoomAt(w, 1e6, 0, 0, 10, 10);
    expect(out).toEqual(fullWindow(10, 10));
    expect(panBy(fullWindow(10, 10), 0.5, 0.5, 10, 10)).toEqual(fullWindow(10, 10));
    expect(clampWin({ r0: -5, r1: 3, c0: 8, c1: 20 }, 10, 10)).toEqual({
      r0: 0,
      r1: 8,
      c0: 0,
      c1: 10,
    });
  });
  it("box zoom maps canvas fractions to cells", () => {
    expect(boxWin(fullWindow(100, 200), 0.75, 0.5, 0.25, 0.1, 100, 200)).toEqual({
      r0: 10,
      r1: 50,
      c0: 50,
      c1: 150,
    });
  });
  it("tile requests cover the window in integers at canvas resolution", () => {
    const req = tileRequest({ r0: 10.5, r1: 20.25, c0: 0, c1: 4000 }, 1000, 400, 100, 4000);
    expect(req.window).toEqual([10, 21, 0, 4000]);
    expect(req.out[1]).toBe(1000);
    expect(req.out[0]).toBe(11); // never more rows than cells
  });
  it("ticks are integers inside the window on a 1-2-5 step", () => {
    const t = niceTicks(100, 1100, 6);
    expect(t[0]).toBeGreaterThanOrEqual(100);
    expect(t[t.length - 1]).toBeLessThan(1100);
    expect(t[1] - t[0]).toBe(200);
    expect(niceTicks(3.2, 5.9, 10)).toEqual([3, 4, 5]);
  });
});

describe("quantized tiles", () => {
  it("decode codes and sentinels like wire/quantize.py", () => {
    const v = dequantize(new Uint8Array([0, 125, 250, NAN, POSINF, NEGINF]), {
      lo: -1,
      hi: 1,
      log: false,
      levels: 250,
    });
    expect(Array.from(v.slice(0, 3))).toEqual([-1, 0, 1]);
    expect(Number.isNaN(v[3])).toBe(true);
    expect(v[4]).toBe(Number.POSITIVE_INFINITY);
    expect(v[5]).toBe(Number.NEGATIVE_INFINITY);
    const l = dequantize(new Uint8Array([0, 250, ZERO]), {
      lo: 1e-30,
      hi: 1e30,
      log: true,
      levels: 250,
    });
    expect(l[0]).toBeCloseTo(1e-30, 35);
    expect(l[1] / 1e30).toBeCloseTo(1, 5);
    expect(l[2]).toBe(0);
  });
});

describe("scales and histograms", () => {
  const hist = { token: 1, lo: 0, hi: 100, abs_lo: 1, abs_hi: 100, counts: new Array(100).fill(1) };
  it("percentiles come from the fine histogram", () => {
    expect(percentile(hist, 1)).toBeCloseTo(1);
    expect(percentile(hist, 99)).toBeCloseTo(99);
  });
  it("each scale mode maps as documented; all-equal data has a non-zero range", () => {
    const stats = { min: -2, max: 4 };
    const o = { colormap: "auto", vmin: null, vmax: null, clip: [1, 99] as [number, number] };
    expect(viewScale(stats, hist, { ...o, scale: "symmetric" })).toMatchObject({
      lo: -4,
      hi: 4,
      diverging: true,
    });
    expect(viewScale(stats, hist, { ...o, scale: "percentile" })).toMatchObject({ lo: 1, hi: 99 });
    expect(viewScale(stats, hist, { ...o, scale: "log" })).toMatchObject({
      lo: 0,
      hi: 2,
      log: true,
    });
    expect(viewScale(stats, hist, { ...o, scale: "fixed", vmin: -1, vmax: 1 })).toMatchObject({
      lo: -1,
      hi: 1,
    });
    const same = viewScale({ min: 3, max: 3 }, undefined, { ...o, scale: "auto" });
    expect(same.hi).toBeGreaterThan(same.lo);
  });
  it("merges fine bins and sorts tables with nulls last", () => {
    expect(mergeBins([1, 2, 3, 4], 2)).toEqual([3, 7]);
    const keys = [3, null, 1, 2];
    expect(sortOrder(4, (i) => keys[i], false)).toEqual([2, 3, 0, 1]);
    expect(sortOrder(4, (i) => keys[i], true)).toEqual([0, 3, 2, 1]);
  });
});
