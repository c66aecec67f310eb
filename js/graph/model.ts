// What is drawn for a given fold state: the visible items (nodes, folded groups, "x N" repeat
// blocks, open groups as boxes), which item owns each node, and the edges between items, filed
// under the open group whose layout places them. No DOM: vitest covers it.
import type { GraphData } from "./data";

export type ItemKind = "node" | "group" | "repeat";

export interface Item {
  key: string;
  /** stable number for the same thing across fold states: node id, 1e6 + group, 2e6 + repeat */
  uid: number;
  kind: ItemKind;
  /** node id, group index or repeat index */
  ref: number;
  /** index of the open group item that contains it; -1 for the root */
  parent: number;
  open: boolean;
  children: number[];
  depth: number;
  /** smallest node id inside: execution order */
  first: number;
  /** nodes it stands for */
  count: number;
}

export interface VisibleEdge {
  src: number;
  dst: number;
  /** index into data.edges / 4 of the first graph edge it draws */
  edge: number;
  /** the children of the layout group the edge connects (ancestors of src and dst) */
  a: number;
  b: number;
  group: number;
  /** open groups the edge leaves on its way (innermost first): [group item, child in it] */
  exits: number[];
  /** open groups the edge enters (innermost first): [group item, child in it] */
  entries: number[];
}

/** Pseudo-children of a layout group: where edges enter from above and leave below. */
export const IN = -1;
export const OUT = -2;

export interface Visible {
  items: Item[];
  owner: Int32Array;
  edges: VisibleEdge[];
  /** layout group item -> edges [a, b] between its children (deduplicated) */
  groupEdges: Map<number, [number, number][]>;
  /** group index -> item (open or folded); repeat index -> item */
  groupItem: Map<number, number>;
  repeatItem: Map<number, number>;
  /** leaf items (what the test hook calls drawn nodes) */
  leaves: number;
}

export interface FoldState {
  /** paths of open groups (the root is always open) */
  open: Set<string>;
  /** repeats shown as their members */
  unfolded: Set<number>;
}

const repeatCache = new WeakMap<GraphData, { groupRepeat: Int32Array; nodeRepeat: Int32Array }>();

/** Repeat index of each group and each leaf-module node (-1: none), computed once per graph. */
export function repeatIndex(data: GraphData) {
  let hit = repeatCache.get(data);
  if (!hit) {
    const groupRepeat = new Int32Array(data.groups.length).fill(-1);
    const nodeRepeat = new Int32Array(data.nodes.length).fill(-1);
    for (const g of data.groups) groupRepeat[g.index] = data.repeatOf.get(g.path) ?? -1;
    for (const n of data.nodes)
      if (n.kind === "module") nodeRepeat[n.id] = data.repeatOf.get(n.path) ?? -1;
    hit = { groupRepeat, nodeRepeat };
    repeatCache.set(data, hit);
  }
  return hit;
}

export function buildVisible(data: GraphData, state: FoldState): Visible {
  const items: Item[] = [];
  const groupItem = new Map<number, number>();
  const repeatItem = new Map<number, number>();
  const nodeItem = new Int32Array(data.nodes.length).fill(-1);
  const add = (kind: ItemKind, ref: number, parent: number, open: boolean, key: string) => {
    const depth = parent < 0 ? 0 : items[parent].depth + 1;
    const uid = kind === "node" ? ref : kind === "group" ? 1e6 + ref : 2e6 + ref;
    items.push({ key, uid, kind, ref, parent, open, children: [], depth, first: 1e15, count: 0 });
    const i = items.length - 1;
    if (parent >= 0) items[parent].children.push(i);
    return i;
  };
  const { groupRepeat, nodeRepeat } = repeatIndex(data);
  const folded = (r: number) => r >= 0 && !state.unfolded.has(r);
  // groupOwner[g]: the folded item that owns the nodes of group g (-1: g is open)
  const groupOwner = new Int32Array(data.groups.length).fill(-1);
  const ownSubtree = (gi: number, item: number) => {
    groupOwner[gi] = item;
    for (const c of data.groups[gi].children) ownSubtree(c, item);
  };
  const repeatBlock = (r: number, parent: number) => {
    let it = repeatItem.get(r);
    if (it === undefined) {
      it = add("repeat", r, parent, false, `r${r}`);
      repeatItem.set(r, it);
    }
    return it;
  };
  const build = (gi: number, parent: number): number => {
    const g = data.groups[gi];
    const me = add("group", gi, parent, true, `g${g.path}`);
    groupItem.set(gi, me);
    for (const cg of g.children) {
      const r = groupRepeat[cg];
      if (folded(r)) ownSubtree(cg, repeatBlock(r, me));
      else if (state.open.has(data.groups[cg].path)) build(cg, me);
      else {
        const it = add("group", cg, me, false, `g${data.groups[cg].path}`);
        groupItem.set(cg, it);
        ownSubtree(cg, it);
      }
    }
    for (const id of g.nodes) {
      const r = nodeRepeat[id];
      if (folded(r)) nodeItem[id] = repeatBlock(r, me);
      else nodeItem[id] = add("node", id, me, false, `n${id}`);
    }
    return me;
  };
  build(data.root, -1);

  const owner = new Int32Array(data.nodes.length);
  for (const node of data.nodes) {
    const o = groupOwner[node.group] >= 0 ? groupOwner[node.group] : nodeItem[node.id];
    owner[node.id] = o;
    const item = items[o];
    if (node.id < item.first) item.first = node.id;
    item.count++;
  }
  // children come after their parent: one backward pass carries first and count up
  for (let i = items.length - 1; i > 0; i--) {
    const it = items[i];
    const p = items[it.parent];
    if (it.first < p.first) p.first = it.first;
    p.count += it.count;
  }

  const edges: VisibleEdge[] = [];
  const groupEdges = new Map<number, [number, number][]>();
  const seenVisible = new Set<number>();
  const seenSibling = new Set<number>();
  const n = items.length;
  // an item's exit (to OUT) or entry (from IN) is linked in its parent's layout at most once
  const exitLinked = new Uint8Array(n);
  const entryLinked = new Uint8Array(n);
  const link = (g: number, x: number, y: number) => {
    const list = groupEdges.get(g);
    if (list) list.push([x, y]);
    else groupEdges.set(g, [[x, y]]);
  };
  const NONE: number[] = [];
  const e = data.edges;
  for (let k = 0; k < e.length; k += 4) {
    const s = owner[e[k]];
    const d = owner[e[k + 1]];
    if (s < 0 || d < 0 || s === d) continue;
    const vkey = s * n + d;
    if (seenVisible.has(vkey)) continue; // same items, same links: nothing new
    seenVisible.add(vkey);
    let a = s;
    let b = d;
    while (items[a].depth > items[b].depth) a = items[a].parent;
    while (items[b].depth > items[a].depth) b = items[b].parent;
    while (items[a].parent !== items[b].parent) {
      a = items[a].parent;
      b = items[b].parent;
    }
    const group = items[a].parent;
    let exits = NONE;
    let entries = NONE;
    for (let x = s; items[x].parent !== group; x = items[x].parent) {
      if (exits === NONE) exits = [];
      exits.push(items[x].parent, x);
      if (!exitLinked[x]) {
        exitLinked[x] = 1;
        link(items[x].parent, x, OUT);
      }
    }
    for (let y = d; items[y].parent !== group; y = items[y].parent) {
      if (entries === NONE) entries = [];
      entries.push(items[y].parent, y);
      if (!entryLinked[y]) {
        entryLinked[y] = 1;
        link(items[y].parent, IN, y);
      }
    }
    const skey = a * n + b;
    if (!seenSibling.has(skey)) {
      seenSibling.add(skey);
      link(group, a, b);
    }
    edges.push({ src: s, dst: d, edge: k / 4, a, b, group, exits, entries });
  }
  let leaves = 0;
  for (const it of items) if (!it.open) leaves++;
  return { items, owner, edges, groupEdges, groupItem, repeatItem, leaves };
}

/** Nodes drawn if every group above `level` is open (repeats folded): for choosing a depth. */
export function leavesAtDepth(data: GraphData, depth: number): number {
  // counts without building items: folded subtrees are never visited
  const { groupRepeat, nodeRepeat } = repeatIndex(data);
  const count = (gi: number): number => {
    const g = data.groups[gi];
    const seen = new Set<number>();
    let total = 0;
    for (const c of g.children) {
      const r = groupRepeat[c];
      if (r >= 0) {
        if (!seen.has(r)) total++;
        seen.add(r);
      } else if (data.groups[c].level < depth) total += count(c);
      else total++;
    }
    for (const id of g.nodes) {
      const r = nodeRepeat[id];
      if (r >= 0) {
        if (!seen.has(r)) total++;
        seen.add(r);
      } else total++;
    }
    return total;
  };
  return count(data.root);
}

export function openToDepth(data: GraphData, depth: number): Set<string> {
  const open = new Set<string>();
  for (const g of data.groups) if (g.level < depth) open.add(g.path);
  return open;
}

/** The start fold: open to `depth`, but blocks inside a folded "x N" stay folded when unfolded. */
export function startFold(data: GraphData, depth: number): FoldState {
  const { groupRepeat } = repeatIndex(data);
  const open = new Set<string>();
  for (const g of data.groups) {
    if (g.level >= depth) continue;
    let inRepeat = false;
    for (let a = g.index; a >= 0 && !inRepeat; a = data.groups[a].parent)
      inRepeat = groupRepeat[a] >= 0;
    if (!inRepeat) open.add(g.path);
  }
  return { open, unfolded: new Set() };
}

/** The deepest start depth that draws at most `most` items (at least depth 1). */
export function autoDepth(data: GraphData, most = 60): number {
  let maxLevel = 0;
  for (const g of data.groups) maxLevel = Math.max(maxLevel, g.level);
  let best = 1;
  for (let d = 1; d <= maxLevel + 1; d++) {
    if (leavesAtDepth(data, d) > most) break;
    best = d;
  }
  return best;
}

/** Open every group (and unfold every repeat) on the way to `path`, so that it is drawn. */
export function reveal(data: GraphData, state: FoldState, groupIndex: number, self: string | null) {
  for (let g = groupIndex; g >= 0; g = data.groups[g].parent) {
    const path = data.groups[g].path;
    state.open.add(path);
    const r = data.repeatOf.get(path);
    if (r !== undefined) state.unfolded.add(r);
  }
  if (self !== null) {
    const r = data.repeatOf.get(self);
    if (r !== undefined) state.unfolded.add(r);
  }
}
