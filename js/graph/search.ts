// The search box: a substring (case-insensitive) or /regex/ over paths and class or op names.
// Matches come back in execution order so that Enter walks down the graph. No DOM.
import type { GraphData } from "./data";

export interface Target {
  type: "node" | "group";
  ref: number;
  first: number;
}

export interface Matches {
  query: string;
  error: string;
  nodes: Set<number>;
  groups: Set<number>;
  targets: Target[];
}

export function matcher(query: string): ((s: string) => boolean) | string {
  const q = query.trim();
  if (q.length > 2 && q.startsWith("/") && q.endsWith("/")) {
    try {
      const re = new RegExp(q.slice(1, -1), "i");
      return (s) => re.test(s);
    } catch (e) {
      return `bad regular expression: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  const low = q.toLowerCase();
  return (s) => s.toLowerCase().includes(low);
}

/** Smallest node id under each group (groups with no nodes: +Infinity). */
export function groupFirsts(data: GraphData): Float64Array {
  const first = new Float64Array(data.groups.length).fill(Number.POSITIVE_INFINITY);
  for (const node of data.nodes)
    for (let g = node.group; g >= 0; g = data.groups[g].parent)
      if (node.id < first[g]) first[g] = node.id;
      else break;
  return first;
}

export function search(data: GraphData, query: string, firsts: Float64Array): Matches {
  const out: Matches = { query, error: "", nodes: new Set(), groups: new Set(), targets: [] };
  if (!query.trim()) return out;
  const test = matcher(query);
  if (typeof test === "string") {
    out.error = test;
    return out;
  }
  for (const node of data.nodes)
    if (test(node.path) || test(node.name)) {
      out.nodes.add(node.id);
      out.targets.push({ type: "node", ref: node.id, first: node.id });
    }
  for (const g of data.groups)
    if (g.index !== data.root && (test(g.path) || test(g.cls))) {
      out.groups.add(g.index);
      out.targets.push({ type: "group", ref: g.index, first: firsts[g.index] - 0.5 });
    }
  out.targets.sort((a, b) => a.first - b.first);
  return out;
}
