// anywidget entry of ls.heatmap (TensorView).
import type { RenderProps } from "@anywidget/types";
import { entry } from "../core/entry";
import { Requester } from "../core/request";
import { type Model, mountHeatmap } from "../tensor/bind";

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const requester = new Requester(model as never, 30_000);
  const [view, cleanup] = mountHeatmap(model as Model, requester);
  el.append(view.root);
  return () => {
    cleanup();
    requester.dispose();
  };
}

export default entry(render);
