import { describe, expect, it } from "vitest";
import { elideMiddle } from "../core/format";
import { elidePath, fitColumns, segmentCounts } from "./table";

describe("elideMiddle", () => {
  it("keeps short text and the distinguishing tail of long text", () => {
    expect(elideMiddle("fc1.weight", 20)).toBe("fc1.weight");
    const a = elideMiddle("encoder.layers.0.self_attn.out_proj.weight", 24);
    const b = elideMiddle("encoder.layers.0.self_attn.in_proj_weight", 24);
    expect(a.length).toBe(24);
    expect(a).toBe("encod…tn.out_proj.weight");
    expect(a).not.toBe(b);
    expect(b.endsWith("in_proj_weight")).toBe(true);
  });
});

describe("fitColumns", () => {
  it("keeps the first column and then the lowest priorities that fit", () => {
    // first, shape (p1), norm (p2), kind (p7): 120 + 80 + 60 fit in 280, kind does not.
    expect(fitColumns([300, 80, 60, 70], [0, 1, 2, 7], 280)).toEqual([true, true, true, false]);
    expect(fitColumns([300, 80, 60, 70], [0, 1, 2, 7], 1000)).toEqual([true, true, true, true]);
    expect(fitColumns([300, 80, 60, 70], [0, 1, 2, 7], 100)).toEqual([true, false, false, false]);
  });
});

describe("elidePath", () => {
  const paths = [0, 1].flatMap((l) =>
    [
      "self_attn.in_proj_weight",
      "self_attn.out_proj.weight",
      "linear1.weight",
      "linear2.weight",
    ].map((p) => `layers.${l}.${p}`),
  );
  const freq = segmentCounts(paths);
  it("drops the segments rows share, so rows stay apart", () => {
    expect(elidePath("layers.0.self_attn.in_proj_weight", 18, freq)).toBe("…0…in_proj_weight");
    expect(elidePath("layers.0.linear1.weight", 18, freq)).toBe("…0.linear1.weight");
    const short = paths.map((p) => elidePath(p, 20, freq));
    expect(new Set(short).size).toBe(paths.length);
    for (const s of short) expect(s.length).toBeLessThanOrEqual(20);
  });
  it("keeps paths that fit", () => {
    expect(elidePath("fc1.weight", 20, freq)).toBe("fc1.weight");
  });
});
