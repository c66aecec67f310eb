// Binding of a UnitsPanel to an anywidget model (the units entry and the workspace both mount it
// this way): traits in, `unit` / `sort` / `filter` out.
import type { AnyModel } from "@anywidget/types";
import { bindPanel } from "../core/mount";
import type { Requester } from "../core/request";
import { UnitsPanel, type UnitsState } from "./view";

export type Model = AnyModel<Record<string, unknown>>;

export const UNITS_EVENTS = [
  "_table",
  "_card",
  "_baked",
  "_error",
  "unit",
  "sort",
  "filter",
  "height",
]
  .map((n) => `change:${n}`)
  .join(" ");

export function unitsState(model: Model): UnitsState {
  return {
    table: (model.get("_table") as UnitsState["table"]) ?? {},
    card: (model.get("_card") as UnitsState["card"]) ?? {},
    baked: (model.get("_baked") as UnitsState["baked"]) ?? {},
    unit: Number(model.get("unit") ?? 0),
    sort: String(model.get("sort") ?? "index"),
    filter: String(model.get("filter") ?? "all"),
    height: Number(model.get("height") ?? 460),
    error: String(model.get("_error") ?? ""),
  };
}

/** A units view bound to `model`: returns the panel and a cleanup function. */
export function mountUnits(model: Model, requester: Requester): [UnitsPanel, () => void] {
  const panel = new UnitsPanel(requester, (name, value) => {
    model.set(name, value);
    model.save_changes();
  });
  return [panel, bindPanel(model, requester, panel, () => unitsState(model), UNITS_EVENTS)];
}
