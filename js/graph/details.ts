// The details panel of the selected node, group or repeat block. Every string from the model goes
// in through textContent (el()).
import { el } from "../core/dom";
import { count, shortNumber } from "../core/format";
import { type GNode, type GraphData, type Tensor, tensorText } from "./data";

export type Selection =
  | { type: "node"; ids: number[] }
  | { type: "group"; ref: number }
  | { type: "repeat"; ref: number }
  | { type: "none" }
  | { type: "unknown"; path: string };

function row(parent: HTMLElement, label: string, value: string, mono = false) {
  const d = el("div");
  d.append(el("span", "ls-muted", `${label}: `), el("span", mono ? "ls-mono" : "", value));
  parent.append(d);
}

function tensors(parent: HTMLElement, title: string, list: (Tensor | undefined)[]) {
  parent.append(el("h4", "", title));
  if (!list.length) {
    parent.append(el("div", "ls-muted", "none"));
    return;
  }
  const ul = el("ul", "ls-mono");
  for (const t of list) ul.append(el("li", "", tensorText(t)));
  parent.append(ul);
}

export function overlayText(v: number | string | undefined): string {
  if (v === undefined) return "";
  return typeof v === "number" ? shortNumber(v) : String(v);
}

export function renderDetails(
  box: HTMLElement,
  data: GraphData,
  sel: Selection,
  overlay: Record<string, number | string>,
  overlayLabel: string,
  onToggle: ((label: string) => void) | null,
  toggleLabel: string,
): void {
  box.replaceChildren();
  const T = (i: number) => data.tensors[i];
  const over = (path: string) => {
    const v = overlay[path];
    if (v !== undefined && overlayLabel !== "parameters")
      row(box, overlayLabel || "overlay", overlayText(v));
  };
  const toggle = () => {
    if (!onToggle) return;
    const b = el("button", "ls-graph-toggle", toggleLabel);
    b.addEventListener("click", () => onToggle(toggleLabel));
    box.append(b);
  };
  if (sel.type === "none") {
    const s = data.summary;
    box.append(el("div", "ls-title", String(s.model ?? "model")));
    row(box, "nodes", count(Number(s.nodes ?? 0)));
    row(box, "ops", count(Number(s.ops ?? 0)));
    row(box, "parameters", count(Number(s.params ?? 0)));
    row(box, "device", String(s.device ?? ""));
    box.append(el("div", "ls-muted", "Click a node for its shapes and parameters."));
    return;
  }
  if (sel.type === "unknown") {
    box.append(el("div", "ls-error", `no module or node at path ${JSON.stringify(sel.path)}`));
    return;
  }
  if (sel.type === "group") {
    const g = data.groups[sel.ref];
    box.append(el("div", "ls-title", g.cls));
    box.append(el("div", "ls-mono ls-graph-path", g.path || "(the model)"));
    row(box, "kind", "module group");
    row(box, "parameters", count(g.params));
    row(box, "child modules", String(g.children.length));
    over(g.path);
    toggle();
    g.calls.forEach(([ins, outs], k) => {
      const label = g.calls.length > 1 ? ` (call ${k + 1})` : "";
      tensors(box, `inputs${label}`, ins.map(T));
      tensors(box, `outputs${label}`, outs.map(T));
    });
    return;
  }
  if (sel.type === "repeat") {
    const r = data.repeats[sel.ref];
    box.append(el("div", "ls-title", r.label.replace(/ x(\d+)$/, " ×$1")));
    box.append(
      el("div", "ls-mono ls-graph-path", `${r.paths[0]} … ${r.paths[r.paths.length - 1]}`),
    );
    row(box, "kind", `${r.paths.length} repeated blocks of the same structure`);
    const gi = data.groupByPath.get(r.paths[0]);
    const params = gi !== undefined ? data.groups[gi].params : 0;
    row(box, "parameters", `${count(params)} each, ${count(params * r.paths.length)} in all`);
    over(r.paths[0]);
    toggle();
    return;
  }
  const nodes: GNode[] = sel.ids.map((i) => data.nodes[i]);
  const n = nodes[0];
  box.append(el("div", "ls-title", n.name));
  box.append(el("div", "ls-mono ls-graph-path", n.path));
  row(box, "kind", n.kind === "function" ? `function${n.inplace ? " (in place)" : ""}` : n.kind);
  if (n.kind === "module") {
    row(box, "calls", n.calls > 1 ? `${n.calls} (one module, shared weights)` : "1");
    row(box, "parameters", count(n.params));
    over(n.path);
    if (n.pshapes) {
      const ul = el("ul", "ls-mono");
      for (const [name, shape] of Object.entries(n.pshapes))
        ul.append(el("li", "", `${name}: (${shape.join(", ")}${shape.length === 1 ? "," : ""})`));
      box.append(ul);
    }
  } else over(n.path);
  for (const node of nodes) {
    const label = nodes.length > 1 ? ` (call ${node.call + 1})` : "";
    tensors(box, `inputs${label}`, node.ins.map(T));
    tensors(box, `outputs${label}`, node.outs.map(T));
  }
}
