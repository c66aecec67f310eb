// Binding of a HeatmapView to an anywidget model (shared by the heatmap, weights and
// activations entries: one tensor view, one requester).
import type { AnyModel } from "@anywidget/types";
import { detectOffline, onChanges } from "../core/mount";
import type { Requester } from "../core/request";
import { type HeatmapState, HeatmapView } from "./heatmap";

export type Model = AnyModel<Record<string, unknown>>;

export const HEATMAP_EVENTS = [
  "_meta",
  "_base",
  "_hist",
  "title",
  "colormap",
  "vmin",
  "vmax",
  "height",
  "agg",
  "scale",
  "clip",
  "log_counts",
  "index",
  "axis_labels",
  "_error",
]
  .map((n) => `change:${n}`)
  .join(" ");

export function heatmapState(model: Model): HeatmapState {
  return {
    meta: model.get("_meta") as HeatmapState["meta"],
    base: model.get("_base") as HeatmapState["base"],
    title: (model.get("title") as string) ?? "",
    colormap: (model.get("colormap") as string) ?? "auto",
    vmin: model.get("vmin") as number | null,
    vmax: model.get("vmax") as number | null,
    height: (model.get("height") as number) ?? 360,
    agg: (model.get("agg") as string) ?? "mean",
    scale: (model.get("scale") as string) ?? "auto",
    clip: (model.get("clip") as [number, number]) ?? [1, 99],
    logCounts: Boolean(model.get("log_counts")),
    hist: model.get("_hist") as HeatmapState["hist"],
    index: (model.get("index") as number[]) ?? [],
    axisLabels: (model.get("axis_labels") as HeatmapState["axisLabels"]) ?? {},
  };
}

/** A heatmap bound to `model`: returns the view and a cleanup function. */
export function mountHeatmap(model: Model, requester: Requester): [HeatmapView, () => void] {
  const view = new HeatmapView(
    requester,
    (token, ms) => {
      model.set("_painted", { token, ms });
      model.save_changes();
    },
    (name, value) => {
      model.set(name, value);
      model.save_changes();
    },
    (t) => {
      model.set("_tile_painted", t);
      model.save_changes();
    },
  );
  const refresh = () => {
    try {
      view.update(heatmapState(model));
      view.showError((model.get("_error") as string) ?? "");
    } catch (e) {
      view.showError(
        `layerscope could not draw this view: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  };
  // One kernel update sets _meta, _base and _hist together and fires a change event for each:
  // draw once per update, not once per trait.
  const unbind = onChanges(model, HEATMAP_EVENTS, refresh);
  // An exported page has no kernel: find out early instead of waiting for a tile to time out.
  detectOffline(model, requester, view);
  return [
    view,
    () => {
      unbind();
      view.dispose();
    },
  ];
}
