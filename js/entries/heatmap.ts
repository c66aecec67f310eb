// anywidget entry of ls.heatmap (TensorView).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { Requester } from "../core/request";
import { type HeatmapState, HeatmapView } from "../tensor/heatmap";

type Model = AnyModel<Record<string, unknown>>;

function stateOf(model: Model): HeatmapState {
  return {
    meta: model.get("_meta") as HeatmapState["meta"],
    base: model.get("_base") as HeatmapState["base"],
    title: (model.get("title") as string) ?? "",
    colormap: (model.get("colormap") as string) ?? "auto",
    vmin: model.get("vmin") as number | null,
    vmax: model.get("vmax") as number | null,
    height: (model.get("height") as number) ?? 360,
  };
}

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const requester = new Requester(model as never, 30_000);
  const view = new HeatmapView(requester, (token, ms) => {
    model.set("_painted", { token, ms });
    model.save_changes();
  });
  el.append(view.root);
  const refresh = () => {
    try {
      view.update(stateOf(model));
      view.showError((model.get("_error") as string) ?? "");
    } catch (e) {
      view.showError(
        `layerscope could not draw this view: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  };
  refresh();
  const events =
    "change:_meta change:_base change:title change:colormap change:vmin change:vmax change:height change:_error";
  model.on(events, refresh);
  return () => {
    model.off(events, refresh);
    requester.dispose();
    view.dispose();
  };
}

export default { render };
