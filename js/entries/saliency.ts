// anywidget entry of ls.saliency (SaliencyView): image overlays or coloured tokens, top-k
// re-targeting, attention thumbnails; the opened attention matrix in the zoomable heatmap.
import type { RenderProps } from "@anywidget/types";
import { entry } from "../core/entry";
import { Requester } from "../core/request";
import { SaliencyUI } from "../saliency/view";
import { type Model, mountHeatmap } from "../tensor/bind";

export function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const requester = new Requester(model as never, 120_000);
  let cleanup = () => {};
  const view = new SaliencyUI(model as Model, requester, () => {
    const [heatmap, done] = mountHeatmap(model as Model, requester);
    cleanup = done;
    return heatmap.root;
  });
  el.append(view.root);
  // An exported page has no kernel: say so at once instead of letting a click time out.
  const probe = new Requester(model as never, 5_000);
  probe
    .request("ping")
    .catch(() => {
      if (!requester.live) view.setOffline();
    })
    .finally(() => probe.dispose());
  return () => {
    view.dispose();
    cleanup();
    requester.dispose();
  };
}

export default entry(render);
