// anywidget entry of ls.saliency (SaliencyView): image overlays or coloured tokens, top-k
// re-targeting, attention thumbnails; the opened attention matrix in the zoomable heatmap.
import type { RenderProps } from "@anywidget/types";
import { entry } from "../core/entry";
import { detectOffline } from "../core/mount";
import { Requester } from "../core/request";
import { SaliencyUI } from "../saliency/view";
import { type Model, mountHeatmap } from "../tensor/bind";

export function mountSaliency({ model, el }: RenderProps<Record<string, unknown>>) {
  const requester = new Requester(model as never, 120_000);
  let cleanup = () => {};
  const view = new SaliencyUI(model as Model, requester, () => {
    const [heatmap, done] = mountHeatmap(model as Model, requester);
    cleanup = done;
    return heatmap.root;
  });
  el.append(view.root);
  // An exported page has no kernel: say so at once instead of letting a click time out.
  detectOffline(model, requester, view);
  return () => {
    view.dispose();
    cleanup();
    requester.dispose();
  };
}

// The view without its styles, for hosts that bring them (the explore workspace). Not named
// `render`: anywidget would take a named `render` over the default export.
export default entry(mountSaliency);
