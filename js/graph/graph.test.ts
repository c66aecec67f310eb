import { describe, expect, it } from "vitest";
import { decodeGraph, nodeSelectPath, type RawGraph } from "./data";
import gpt2 from "./fixtures/gpt2.json";
import mlp from "./fixtures/mlp.json";
import resnet from "./fixtures/resnet.json";
import shared from "./fixtures/shared.json";
import { isotonic, layered } from "./layout";
import {
  autoDepth,
  buildVisible,
  type FoldState,
  leavesAtDepth,
  openToDepth,
  reveal,
} from "./model";
import { SceneBuilder } from "./scene";

const load = (raw: unknown) => decodeGraph(raw as RawGraph);
const measure = (t: string, bold: boolean) => t.length * (bold ? 7 : 6);
const fold = (open: string[] = [""], unfolded: number[] = []): FoldState => ({
  open: new Set(open),
  unfolded: new Set(unfolded),
});

function overlaps(scene: ReturnType<SceneBuilder["build"]>): string[] {
  const bad: string[] = [];
  const items = scene.vis.items;
  for (const it of items) {
    if (!it.open) continue;
    const kids = it.children;
    for (let i = 0; i < kids.length; i++)
      for (let j = i + 1; j < kids.length; j++) {
        const a = kids[i];
        const b = kids[j];
        const sepX =
          scene.x[a] + scene.w[a] <= scene.x[b] + 0.01 ||
          scene.x[b] + scene.w[b] <= scene.x[a] + 0.01;
        const sepY =
          scene.y[a] + scene.h[a] <= scene.y[b] + 0.01 ||
          scene.y[b] + scene.h[b] <= scene.y[a] + 0.01;
        if (!sepX && !sepY) bad.push(`${items[a].key} overlaps ${items[b].key}`);
      }
  }
  return bad;
}

describe("decodeGraph", () => {
  it("rebuilds paths, groups and repeats from the compact form", () => {
    const g = load(resnet);
    expect(g.nodes[0].kind).toBe("input");
    expect(g.groups[g.root].path).toBe("");
    expect(g.nodesByPath.has("layer1.0.conv1")).toBe(true);
    expect(g.repeatOf.get("layer1.1")).toBe(0);
    const add = g.nodes.find((n) => n.kind === "function" && n.name === "add")!;
    expect(add.path).toMatch(/:add$/);
  });
  it("gives a module called twice one path and functions a #call suffix after the first", () => {
    const g = load(shared);
    const twice = [...g.nodesByPath.values()].find((ids) => ids.length === 2)!;
    expect(g.nodes[twice[0]].calls).toBe(2);
    const fns = g.nodes.filter((n) => n.kind === "function" && n.call > 0);
    for (const f of fns) expect(nodeSelectPath(f)).toBe(`${f.path}#${f.call}`);
  });
  it("refuses another schema with a readable message", () => {
    expect(() => decodeGraph({ schema: "x" } as unknown as RawGraph)).toThrow(/schema/);
  });
});

describe("fold state", () => {
  it("a folded group owns every node beneath it and edges between items are deduplicated", () => {
    const g = load(resnet);
    const v = buildVisible(g, fold());
    for (let i = 0; i < g.nodes.length; i++) expect(v.owner[i]).toBeGreaterThanOrEqual(0);
    const keys = v.edges.map((e) => `${e.src}>${e.dst}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(v.items[0].count).toBe(g.nodes.length);
  });
  it("a repeat is one 'x N' block until unfolded, then its members", () => {
    const g = load(gpt2);
    const closed = buildVisible(g, fold(["", "blocks"]));
    expect(closed.items.filter((i) => i.kind === "repeat")).toHaveLength(1);
    const open = buildVisible(g, fold(["", "blocks"], [0]));
    expect(open.items.filter((i) => i.kind === "group" && !i.open)).toHaveLength(3);
    expect(open.leaves).toBeGreaterThan(closed.leaves);
  });
  it("opening a group draws more leaves, folding it back restores the count", () => {
    const g = load(resnet);
    const base = buildVisible(g, fold()).leaves;
    const more = buildVisible(g, fold(["", "layer2"])).leaves;
    expect(more).toBeGreaterThan(base);
    expect(buildVisible(g, fold()).leaves).toBe(base);
  });
  it("auto depth shows at most 60 items and opens small models fully", () => {
    for (const raw of [mlp, resnet, gpt2, shared]) {
      const g = load(raw);
      const d = autoDepth(g);
      const leaves = buildVisible(g, { open: openToDepth(g, d), unfolded: new Set() }).leaves;
      expect(leaves).toBeLessThanOrEqual(60);
    }
    const m = load(mlp);
    expect(
      buildVisible(m, { open: openToDepth(m, autoDepth(m)), unfolded: new Set() }).leaves,
    ).toBe(m.nodes.length);
  });
  it("counts leaves at a depth exactly as buildVisible draws them", () => {
    for (const raw of [mlp, resnet, gpt2, shared]) {
      const g = load(raw);
      for (let d = 1; d < 8; d++)
        expect(leavesAtDepth(g, d)).toBe(
          buildVisible(g, { open: openToDepth(g, d), unfolded: new Set() }).leaves,
        );
    }
  });
  it("the start fold keeps the blocks of a folded repeat folded, and draws the same", async () => {
    const { startFold } = await import("./model");
    const g = load(gpt2);
    const st = startFold(g, 6);
    expect(st.open.has("blocks")).toBe(true);
    expect(st.open.has("blocks.0")).toBe(false);
    expect(buildVisible(g, st).leaves).toBe(leavesAtDepth(g, 6));
    st.unfolded.add(0);
    expect(buildVisible(g, st).leaves).toBe(leavesAtDepth(g, 6) + 2);
  });
  it("reveal opens the ancestors and unfolds repeats on the way", () => {
    const g = load(gpt2);
    const st = fold();
    const id = g.nodesByPath.get("blocks.1.sa.heads.1.key")![0];
    reveal(g, st, g.nodes[id].group, g.nodes[id].path);
    const v = buildVisible(g, st);
    expect(v.items[v.owner[id]].kind).toBe("node");
  });
});

describe("layout", () => {
  it("isotonic keeps order and gaps and is least squares", () => {
    expect(isotonic([0, 0, 0], [0, 10, 10])).toEqual([-10, 0, 10]);
    expect(isotonic([0, 100], [0, 10])).toEqual([0, 100]);
  });
  it("puts every edge downwards and a chain in one column", () => {
    const nodes = [0, 1, 2].map((order) => ({ w: 50, h: 20, order }));
    const r = layered(nodes, [
      [0, 1],
      [1, 2],
    ]);
    expect(r.y[0]).toBeLessThan(r.y[1]);
    expect(r.y[1]).toBeLessThan(r.y[2]);
    expect(r.x[0]).toBeCloseTo(r.x[2]);
  });
  it("routes a skip edge around the middle node", () => {
    const nodes = [0, 1, 2].map((order) => ({ w: 50, h: 20, order }));
    const r = layered(nodes, [
      [0, 1],
      [1, 2],
      [0, 2],
    ]);
    const pts = r.routes.get(2)!;
    expect(pts.length).toBe(4);
    const px = pts[0];
    expect(px < r.x[1] || px > r.x[1] + 50).toBe(true);
  });
  it("lays out real models with no overlapping siblings at every fold", () => {
    for (const raw of [mlp, resnet, gpt2, shared]) {
      const g = load(raw);
      const b = new SceneBuilder(g, measure);
      for (let d = 1; d < 8; d++) {
        const s = b.build(
          buildVisible(g, { open: openToDepth(g, d), unfolded: new Set([0, 1, 2, 3]) }),
        );
        expect(overlaps(s)).toEqual([]);
        for (const p of s.paths) for (const v of p) expect(Number.isFinite(v)).toBe(true);
      }
    }
  });
  it("re-lays out only the opened group and its ancestors", () => {
    const g = load(gpt2);
    const b = new SceneBuilder(g, measure);
    const st = fold(["", "blocks"], [0]);
    b.build(buildVisible(g, st));
    st.open.add("blocks.1");
    const s = b.build(buildVisible(g, st));
    expect(s.laidOut).toBe(3);
  });
  it("in slices (Open all) gives the same scene as in one go, every layout once", () => {
    const g = load(gpt2);
    const all: FoldState = {
      open: new Set(g.groups.map((gr) => gr.path)),
      unfolded: new Set(g.repeats.map((r) => r.index)),
    };
    const vis = buildVisible(g, all);
    const whole = new SceneBuilder(g, measure).build(vis);
    const steps = new SceneBuilder(g, measure).steps(vis, 0);
    const shares: number[] = [];
    let r = steps.next();
    while (!r.done) {
      shares.push(r.value);
      r = steps.next();
    }
    const open = vis.items.filter((it) => it.open).length;
    expect(shares.length).toBeGreaterThanOrEqual(open);
    expect(shares).toEqual([...shares].sort((a, b) => a - b));
    expect(r.value.laidOut).toBe(open);
    expect(r.value.laidOut).toBe(whole.laidOut);
    expect(r.value.paths).toEqual(whole.paths);
    expect(r.value.labels).toEqual(whole.labels);
    expect([...r.value.x]).toEqual([...whole.x]);
    expect([...r.value.y]).toEqual([...whole.y]);
    expect([...r.value.w]).toEqual([...whole.w]);
    expect(overlaps(r.value)).toEqual([]);
  });
});

describe("search", () => {
  it("finds substrings and regexes on path and class, in execution order", async () => {
    const { search, groupFirsts } = await import("./search");
    const g = load(resnet);
    const f = groupFirsts(g);
    const conv = search(g, "conv", f);
    expect(conv.nodes.size).toBeGreaterThan(2);
    const ids = conv.targets.map((t) => t.first);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(search(g, "/^layer1\\.0$/", f).groups.size).toBe(1);
    expect(search(g, "BasicBlock", f).groups.size).toBeGreaterThanOrEqual(2);
    expect(search(g, "/(/", f).error).toMatch(/regular expression/);
    expect(search(g, "", f).targets).toEqual([]);
  });
});

describe("search match colour", () => {
  it("is far from every overlay colour (viridis) and every node kind's colours", async () => {
    const { lut, LUT_SIZE } = await import("../core/colormap");
    const { KINDS, MATCH } = await import("./style");
    const rgb = (hex: string) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
    const dist = (a: number[], b: number[]) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    const m = rgb(MATCH);
    const v = lut("viridis");
    let nearest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < LUT_SIZE; i++)
      nearest = Math.min(nearest, dist(m, [v[3 * i], v[3 * i + 1], v[3 * i + 2]]));
    expect(nearest).toBeGreaterThan(120);
    for (const k of Object.values(KINDS)) {
      expect(dist(m, rgb(k.fill))).toBeGreaterThan(60);
      expect(dist(m, rgb(k.stroke))).toBeGreaterThan(60);
    }
  });
});
