// anywidget entry of ls.weights (WeightsView): the parameter table over the tensor view.
import type { RenderProps } from "@anywidget/types";
import { ensureStyle } from "../core/dom";
import { entry } from "../core/entry";
import { count, shortNumber } from "../core/format";
import { Requester } from "../core/request";
import { type Model, mountHeatmap } from "../tensor/bind";
import { type Column, TABLE_CSS, VirtualTable } from "../tensor/table";

type Rows = Record<string, unknown[]>;

function columns(rows: Rows): Column[] {
  const col = (k: string) => (rows[k] ?? []) as unknown[];
  // The workspace's first display lists the parameters; their statistics follow after the cell.
  const missing = (rows as { pending?: boolean }).pending ? "…" : "—";
  const num = (
    k: string,
    label: string,
    fmt: (v: number) => string,
    priority: number,
    title = label,
  ): Column => ({
    key: k,
    label,
    title,
    priority,
    numeric: true,
    text: (i) => {
      const v = col(k)[i];
      return v === null || v === undefined ? missing : fmt(Number(v));
    },
    sortKey: (i) => {
      const v = col(k)[i];
      return v === null || v === undefined ? null : Number(v);
    },
  });
  const shapes = col("shape") as number[][];
  // What tells parameters apart first (path, shape, norm, NaN/Inf when any); at narrow widths
  // the rest is left out, the least telling first.
  const anyBad = (k: string) => col(k).some((v) => Number(v) > 0);
  return [
    {
      key: "path",
      label: "path",
      title: "parameter path (full text on hover)",
      text: (i) => String(col("path")[i]),
      sortKey: (i) => String(col("path")[i]),
    },
    {
      key: "shape",
      label: "shape",
      priority: 1,
      text: (i) => `(${shapes[i].join(", ")}${shapes[i].length === 1 ? "," : ""})`,
      sortKey: (i) => shapes[i].reduce((a, b) => a * b, 1),
    },
    num("norm", "norm", shortNumber, 2),
    num("nan", "NaN", count, anyBad("nan") ? 1 : 6, "NaN values"),
    num("inf", "Inf", count, anyBad("inf") ? 1 : 6, "infinite values"),
    num("mean", "mean", shortNumber, 3),
    num("std", "std", shortNumber, 3),
    num("count", "count", count, 4, "number of values"),
    {
      key: "dtype",
      label: "dtype",
      priority: 5,
      text: (i) => String(col("dtype")[i]),
      sortKey: (i) => String(col("dtype")[i]),
    },
    {
      key: "kind",
      label: "kind",
      priority: 7,
      title: "parameter or buffer",
      text: (i) => String(col("kind")[i]),
      sortKey: (i) => String(col("kind")[i]),
    },
  ];
}

export function mountWeights({ model, el }: RenderProps<Record<string, unknown>>) {
  ensureStyle("ls-table-css", TABLE_CSS);
  const requester = new Requester(model as never, 30_000);
  const [view, cleanup] = mountHeatmap(model as Model, requester);
  let paths: string[] = [];
  const table = new VirtualTable((row) => {
    model.set("selected", paths[row]);
    model.save_changes();
  });
  table.root.classList.add("ls-weights-table");
  const sync = () => {
    const rows = (model.get("_rows") as Rows) ?? {};
    paths = ((rows.path ?? []) as string[]).map(String);
    table.setData(columns(rows), paths.length);
    table.root.dataset.rows = String(paths.length);
    table.root.dataset.pending = (rows as { pending?: boolean }).pending ? "1" : "0";
  };
  const select = () => {
    const i = paths.indexOf(String(model.get("selected") ?? ""));
    table.select(i);
    if (i >= 0) table.reveal(i);
  };
  sync();
  select();
  model.on("change:_rows", sync);
  model.on("change:selected", select);
  // The table sits above the heatmap, inside the same view box.
  view.root.classList.add("ls-weights");
  view.root.insertBefore(table.root, view.root.firstChild);
  el.append(view.root);
  return () => {
    model.off("change:_rows", sync);
    model.off("change:selected", select);
    table.dispose();
    cleanup();
    requester.dispose();
  };
}

// The view without its styles, for hosts that bring them (the explore workspace). Not named
// `render`: anywidget would take a named `render` over the default export.
export default entry(mountWeights);
