import { describe, expect, it } from "vitest";
import {
  fitView,
  insidePolygon,
  lassoSelect,
  needsRebase,
  PALETTE,
  PointGrid,
  pointColours,
  recentred,
  toData,
  toScreen,
  zoomAt,
} from "./geometry";

describe("view transform", () => {
  it("round-trips screen and data, and zooms about the pointer", () => {
    const v = { cx: 1, cy: -2, k: 50, width: 400, height: 300 };
    const [sx, sy] = toScreen(v, 3, 1);
    expect(toData(v, sx, sy)).toEqual([3, 1]);
    const z = zoomAt(v, 100, 80, 4);
    const before = toData(v, 100, 80);
    const after = toData(z, 100, 80);
    expect(after[0]).toBeCloseTo(before[0], 12);
    expect(after[1]).toBeCloseTo(before[1], 12);
    expect(z.k).toBe(200);
  });

  it("fits every finite point and ignores NaN", () => {
    const v = fitView([0, 0, 10, 5, Number.NaN, 1e9], 200, 100);
    expect(v.cx).toBe(5);
    expect(v.cy).toBe(2.5);
    expect(v.k).toBeCloseTo(18.4);
  });
});

describe("re-centring", () => {
  it("keeps points distinct at deep zoom where plain float32 merges them", () => {
    const base = 1000.0;
    const xy = new Float64Array([base, 0, base + 1e-5, 0]);
    const plain = Float32Array.from(xy);
    expect(plain[0]).toBe(plain[2]); // float32 cannot tell them apart
    const r = recentred(xy, base, 0);
    expect(r[2] - r[0]).toBeCloseTo(1e-5, 9);
    expect(needsRebase({ cx: base, cy: 0, k: 1e7, width: 10, height: 10 }, 0, 0)).toBe(true);
    expect(needsRebase({ cx: 0.1, cy: 0, k: 100, width: 10, height: 10 }, 0, 0)).toBe(false);
  });
});

describe("picking and lasso", () => {
  const xy = new Float32Array([0, 0, 1, 1, 2, 2, 0.1, 0.05, 5, 5]);
  it("finds the nearest point within the radius, skipping hidden ones", () => {
    const g = new PointGrid(xy);
    expect(g.nearest(0.09, 0.06, 0.5)).toBe(3);
    expect(g.nearest(3.5, 3.5, 0.5)).toBe(-1);
    const hiddenThree = new PointGrid(xy, (i) => i !== 3);
    expect(hiddenThree.nearest(0.09, 0.06, 0.5)).toBe(0);
  });
  it("selects exactly the points inside a polygon", () => {
    const square = [-0.5, -0.5, 1.5, -0.5, 1.5, 1.5, -0.5, 1.5];
    expect(lassoSelect(xy, square)).toEqual([0, 1, 3]);
    expect(insidePolygon(square, 2, 2)).toBe(false);
    // a concave L: the notch is outside
    const ell = [0, 0, 3, 0, 3, 1, 1, 1, 1, 3, 0, 3];
    expect(insidePolygon(ell, 2, 2)).toBe(false);
    expect(insidePolygon(ell, 0.5, 2)).toBe(true);
    expect(lassoSelect(xy, [0, 0, 1, 1])).toEqual([]); // fewer than 3 vertices
  });
});

describe("colours", () => {
  it("paints classes from the palette and hides toggled classes", () => {
    const c = { kind: "categorical" as const, values: [0, 2, 1], classes: ["a", "b", "c"] };
    const rgba = pointColours(c, new Set(["b"]), 1);
    expect(Array.from(rgba.slice(0, 4))).toEqual([...PALETTE[0], 255]);
    expect(Array.from(rgba.slice(4, 8))).toEqual([...PALETTE[2], 255]);
    expect(rgba[11]).toBe(0); // class "b" hidden
  });
  it("maps continuous values over the range with NaN in its own colour", () => {
    const c = {
      kind: "continuous" as const,
      values: [0, 1, Number.NaN],
      range: [0, 1] as [number, number],
    };
    const rgba = pointColours(c, new Set(), 0.5);
    expect(Array.from(rgba.slice(0, 3))).toEqual([68, 1, 84]); // viridis' first stop
    expect(Array.from(rgba.slice(8, 11))).toEqual([255, 0, 255]); // NaN: magenta
    expect(rgba[3]).toBe(128);
  });
});
