import { describe, expect, it } from "vitest";
import { shownRange } from "./scale";

describe("shownRange", () => {
  it("spans the 1st to 99th percentile, so one outlier does not set the range", () => {
    const v = Float32Array.from({ length: 1000 }, (_, i) => (i % 2 ? 0.3 : -0.3) * ((i % 7) / 6));
    v[10] = 50;
    const r = shownRange(v, { min: -5, max: 50 });
    expect(r?.min).toBeCloseTo(-0.3, 5);
    expect(r?.max).toBeCloseTo(0.3, 5);
  });
  it("keeps a signed tensor diverging around 0 and gives up on a flat display", () => {
    expect(shownRange(Float32Array.from([0.1, 0.2, 0.3]), { min: -1, max: 1 })).toEqual({
      min: -0.30000001192092896,
      max: 0.30000001192092896,
    });
    expect(shownRange(new Float32Array(100), { min: -1, max: 1 })).toBeNull();
    expect(shownRange(Float32Array.from([2, 2, 2]), { min: 0, max: 3 })).toBeNull();
  });
});
