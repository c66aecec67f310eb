import { describe, expect, it } from "vitest";
import { discOffsets, splat, word, words } from "./raster";

const view = { cx: 0, cy: 0, k: 10, width: 20, height: 20 };

function drawn(px: Uint32Array, w: number): [number, number][] {
  const out: [number, number][] = [];
  px.forEach((v, i) => {
    if (v) out.push([i % w, Math.floor(i / w)]);
  });
  return out;
}

describe("raster points", () => {
  it("discs: a full square up to 3 px, corners cut above", () => {
    expect(discOffsets(1)[0].length).toBe(1);
    expect(discOffsets(2)[0].length).toBe(4);
    expect(discOffsets(3)[0].length).toBe(9);
    const [xs, ys] = discOffsets(6);
    expect(xs.length).toBeLessThan(36);
    expect(xs.length).toBeGreaterThan(24);
    // symmetric about the centre
    const set = new Set(Array.from(xs, (x, j) => `${x},${ys[j]}`));
    for (const s of set) {
      const [x, y] = s.split(",").map(Number);
      expect(set.has(`${5 - x},${5 - y}`)).toBe(true);
    }
  });

  it("writes each point's colour where the view puts it, and skips hidden, NaN and off-screen points", () => {
    const px = new Uint32Array(20 * 20);
    const xy = new Float32Array([0, 0, 0.5, 0.5, Number.NaN, 0, 5, 5, -0.5, -0.5]);
    const red = word(255, 0, 0, 200);
    const cols = new Uint32Array([red, word(0, 255, 0, 255), red, red, word(0, 0, 255, 0)]);
    splat(px, 20, 20, view, 1, xy, cols, { diameter: 1 });
    // (0, 0) -> screen (10, 10); (0.5, 0.5) -> (15, 5); y grows upwards in data
    expect(drawn(px, 20)).toEqual([
      [15, 5],
      [10, 10],
    ]);
    expect(px[10 * 20 + 10]).toBe(red);
    expect(px[5 * 20 + 15]).toBe(word(0, 255, 0, 255));
  });

  it("clips discs at the edges, dims alpha, honours the device pixel ratio", () => {
    const px = new Uint32Array(40 * 40);
    const xy = new Float32Array([-1, 0]); // the left edge at dpr 2: screen x 0
    splat(px, 40, 40, view, 2, xy, new Uint32Array([word(9, 9, 9, 200)]), {
      diameter: 4,
      alpha: 0.25,
    });
    const pts = drawn(px, 40);
    expect(pts.length).toBeGreaterThan(0);
    expect(Math.max(...pts.map(([x]) => x))).toBeLessThan(2);
    for (const [x, y] of pts) expect(px[y * 40 + x] >>> 24).toBe(50);
  });

  it("reads RGBA bytes as words without a copy", () => {
    const rgba = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const w = words(rgba);
    expect(w.buffer).toBe(rgba.buffer);
    expect(w[1]).toBe(word(5, 6, 7, 8));
  });
});
