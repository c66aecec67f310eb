import { describe, expect, it } from "vitest";
import { unitOrder } from "./table";

const cols = {
  mean: [0.5, 0.1, Number.NaN, 0.9],
  std: [1, 2, 3, 4],
  max: [1, 1, 1, 1],
  frac_zero: [0.2, 1.0, 0.995, 0.0],
  frac_saturated: [Number.NaN, Number.NaN, Number.NaN, Number.NaN],
  nonfinite: [0, 0, 4, 0],
};

describe("unit order", () => {
  it("puts dead units first and keeps index order on ties", () => {
    expect(unitOrder(cols, 4, "dead", "all")).toEqual([1, 2, 0, 3]);
    expect(unitOrder(cols, 4, "index", "dead")).toEqual([1, 2]);
    expect(unitOrder(cols, 4, "index", "alive")).toEqual([0, 3]);
  });
  it("sorts NaN last and filters units with NaN/Inf", () => {
    expect(unitOrder(cols, 4, "mean", "all")).toEqual([3, 0, 1, 2]);
    expect(unitOrder(cols, 4, "index", "nonfinite")).toEqual([2]);
    expect(unitOrder(cols, 4, "saturated", "saturated")).toEqual([]);
  });
});
