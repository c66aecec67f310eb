// The baked graph ("layerscope.graphview/1", written by widgets/graph.py compact_graph) decoded
// into plain arrays the layout and the renderer index by number. Strings from the model stay
// strings: they only ever reach the page through textContent or canvas fillText.

export type NodeKind = "module" | "function" | "input" | "output";
const KINDS: NodeKind[] = ["module", "function", "input", "output"];

export interface Tensor {
  shape: number[];
  dtype: string;
}

export interface GNode {
  id: number;
  kind: NodeKind;
  name: string;
  path: string;
  /** Index of the group holding it (inputs and outputs: the root group). */
  group: number;
  call: number;
  groupCall: number;
  ins: number[];
  outs: number[];
  params: number;
  calls: number;
  inplace: boolean;
  pshapes: Record<string, number[]> | null;
}

export interface GGroup {
  index: number;
  path: string;
  cls: string;
  parent: number;
  children: number[];
  nodes: number[];
  params: number;
  calls: [number[], number[]][];
  /** 0 for the root "", 1 for its children... */
  level: number;
}

export interface GRepeat {
  index: number;
  parent: string;
  paths: string[];
  cls: string;
  label: string;
}

export interface GraphData {
  summary: Record<string, unknown>;
  tensors: Tensor[];
  nodes: GNode[];
  groups: GGroup[];
  repeats: GRepeat[];
  /** Flat [src, dst, out, in, ...]. */
  edges: Int32Array;
  root: number;
  groupByPath: Map<string, number>;
  nodesByPath: Map<string, number[]>;
  /** Member path (group or leaf module) -> index of its repeat. */
  repeatOf: Map<string, number>;
}

export interface RawGraph {
  schema: string;
  summary: Record<string, unknown>;
  tensors: [number[], string][];
  names: string[];
  nodes: {
    kind: number[];
    name: number[];
    group: number[];
    p: string[];
    call: number[];
    gcall: number[];
    ins: number[][];
    outs: number[][];
    params: number[];
    calls: number[];
    inplace: number[];
    pshapes: Record<string, Record<string, number[]>>;
    path_fix: Record<string, string>;
  };
  edges: number[];
  groups: {
    path: string[];
    class: string[];
    parent: number[];
    params: number[];
    calls: [number[], number[]][][];
  };
  repeats: { parent: string; paths: string[]; class: string; label: string }[];
}

export const SCHEMA = "layerscope.graphview/1";

function join(group: string, name: string): string {
  return group ? `${group}.${name}` : name;
}

/** Decode the synced trait; throws a readable error for anything that is not our schema. */
export function decodeGraph(raw: RawGraph): GraphData {
  if (!raw || raw.schema !== SCHEMA)
    throw new Error(
      `expected a graph with schema ${SCHEMA}, got ${JSON.stringify(raw?.schema ?? null)}`,
    );
  const gr = raw.groups;
  const groups: GGroup[] = gr.path.map((path, i) => ({
    index: i,
    path,
    cls: gr.class[i],
    parent: gr.parent[i],
    children: [],
    nodes: [],
    params: gr.params[i],
    calls: gr.calls[i] ?? [],
    level: path === "" ? 0 : path.split(".").length,
  }));
  const groupByPath = new Map<string, number>();
  for (const g of groups) groupByPath.set(g.path, g.index);
  let root = groupByPath.get("") ?? -1;
  if (root < 0) {
    root = groups.length;
    groups.push({
      index: root,
      path: "",
      cls: String(raw.summary?.model ?? "model"),
      parent: -1,
      children: [],
      nodes: [],
      params: 0,
      calls: [],
      level: 0,
    });
    groupByPath.set("", root);
  }
  for (const g of groups) {
    if (g.index === root) continue;
    if (g.parent < 0) g.parent = root;
    groups[g.parent].children.push(g.index);
  }
  const n = raw.nodes;
  const nodes: GNode[] = [];
  const nodesByPath = new Map<string, number[]>();
  for (let i = 0; i < n.kind.length; i++) {
    const kind = KINDS[n.kind[i]] ?? "function";
    const name = raw.names[n.name[i]] ?? "";
    const gi = n.group[i] >= 0 ? n.group[i] : root;
    const gpath = groups[gi].path;
    let path = n.path_fix[String(i)];
    if (path === undefined) {
      if (kind === "module") path = join(gpath, n.p[i]);
      else if (kind === "function") path = `${gpath}:${name}`;
      else path = n.p[i];
    }
    nodes.push({
      id: i,
      kind,
      name,
      path,
      group: gi,
      call: n.call[i],
      groupCall: n.gcall[i] ?? 0,
      ins: n.ins[i],
      outs: n.outs[i],
      params: n.params[i],
      calls: n.calls[i],
      inplace: n.inplace[i] === 1,
      pshapes: n.pshapes[String(i)] ?? null,
    });
    groups[gi].nodes.push(i);
    const list = nodesByPath.get(path);
    if (list) list.push(i);
    else nodesByPath.set(path, [i]);
  }
  const repeats: GRepeat[] = raw.repeats.map((r, i) => ({
    index: i,
    parent: r.parent,
    paths: r.paths,
    cls: r.class,
    label: r.label,
  }));
  const repeatOf = new Map<string, number>();
  for (const r of repeats) for (const p of r.paths) repeatOf.set(p, r.index);
  return {
    summary: raw.summary ?? {},
    tensors: raw.tensors.map(([shape, dtype]) => ({ shape, dtype })),
    nodes,
    groups,
    repeats,
    edges: Int32Array.from(raw.edges),
    root,
    groupByPath,
    nodesByPath,
    repeatOf,
  };
}

/** The id a view uses for a node in `selected`: functions add "#k" after the first call. */
export function nodeSelectPath(node: GNode): string {
  return node.kind === "function" && node.call > 0 ? `${node.path}#${node.call}` : node.path;
}

export function shapeText(t: Tensor | undefined): string {
  if (!t) return "?";
  return t.shape.length ? t.shape.join("×") : "scalar";
}

export function tensorText(t: Tensor | undefined): string {
  if (!t) return "?";
  return `(${t.shape.join(", ")}${t.shape.length === 1 ? "," : ""}) ${t.dtype}`;
}
