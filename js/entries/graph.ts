// anywidget entry of ls.graph (GraphView). The graph is baked whole in `_graph`, so the view
// needs no kernel: it works the same in an exported offline page.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { entry } from "../core/entry";
import type { RawGraph } from "../graph/data";
import { type GraphState, GraphView } from "../graph/view";

type Model = AnyModel<Record<string, unknown>>;

function stateOf(model: Model): GraphState {
  return {
    graph: model.get("_graph") as RawGraph | string,
    selected: (model.get("selected") as string) ?? "",
    search: (model.get("search") as string) ?? "",
    overlay: (model.get("overlay") as Record<string, number | string>) ?? {},
    overlayLabel: (model.get("overlay_label") as string) ?? "",
    expanded: (model.get("expanded") as string[] | null) ?? null,
    height: (model.get("height") as number) ?? 600,
  };
}

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const save = (key: string, value: unknown) => {
    model.set(key, value);
    model.save_changes();
  };
  const view = new GraphView({
    select: (path) => save("selected", path),
    search: (q) => save("search", q),
    expanded: (paths) => save("expanded", paths),
    rendered: (ms, nodes) => save("_rendered", { ms, nodes }),
  });
  el.append(view.root);
  const refresh = () => {
    try {
      view.update(stateOf(model));
      view.showError((model.get("_error") as string) ?? "");
    } catch (e) {
      view.showError(
        `layerscope could not draw this graph: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  };
  refresh();
  const events =
    "change:_graph change:selected change:search change:overlay change:overlay_label change:expanded change:height change:_error";
  model.on(events, refresh);
  return () => {
    model.off(events, refresh);
    view.dispose();
  };
}

export default entry(render);
