// Binding of a ProjectionPanel to an anywidget model (the projection entry and the workspace
// both mount it this way): traits in, `selected` / `hidden` / `color_by` / `method` / `epoch` out.
import type { AnyModel } from "@anywidget/types";
import { bindPanel } from "../core/mount";
import type { Requester } from "../core/request";
import { ProjectionPanel, type ProjectionState } from "./view";

export type Model = AnyModel<Record<string, unknown>>;

export const PROJECTION_EVENTS = [
  "_points",
  "_arrays",
  "_status",
  "_frames",
  "_thumbs",
  "_notes",
  "_error",
  "color_by",
  "selected",
  "hidden",
  "method",
  "epoch",
  "height",
  "point_size",
]
  .map((n) => `change:${n}`)
  .join(" ");

export function projectionState(model: Model): ProjectionState {
  return {
    points: (model.get("_points") as ProjectionState["points"]) ?? {},
    arrays: (model.get("_arrays") as ProjectionState["arrays"]) ?? {},
    colorBy: String(model.get("color_by") ?? "label"),
    selected: (model.get("selected") as number[]) ?? [],
    hidden: (model.get("hidden") as string[]) ?? [],
    method: String(model.get("method") ?? "pca"),
    status: (model.get("_status") as ProjectionState["status"]) ?? {},
    frames: (model.get("_frames") as ProjectionState["frames"]) ?? {},
    epoch: Number(model.get("epoch") ?? -1),
    thumbs: (model.get("_thumbs") as ProjectionState["thumbs"]) ?? {},
    notes: (model.get("_notes") as string[]) ?? [],
    height: Number(model.get("height") ?? 420),
    pointSize: Number(model.get("point_size") ?? 0),
    error: String(model.get("_error") ?? ""),
  };
}

/** A projection bound to `model`: returns the panel and a cleanup function. */
export function mountProjection(model: Model, requester: Requester): [ProjectionPanel, () => void] {
  const panel = new ProjectionPanel(requester, (name, value) => {
    model.set(name, value);
    model.save_changes();
  });
  panel.onPainted = (info) => {
    model.set("_painted", info);
    model.save_changes();
  };
  return [
    panel,
    bindPanel(model, requester, panel, () => projectionState(model), PROJECTION_EVENTS),
  ];
}
