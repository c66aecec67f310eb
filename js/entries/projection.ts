// anywidget entry of ls.projection (ProjectionView).
import type { RenderProps } from "@anywidget/types";
import { Requester } from "../core/request";
import { type Model, mountProjection } from "../projection/bind";

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const requester = new Requester(model as never, 30_000);
  const [panel, cleanup] = mountProjection(model as Model, requester);
  el.append(panel.root);
  (el as unknown as { __lsProjection: unknown }).__lsProjection = panel;
  return () => {
    cleanup();
    requester.dispose();
  };
}

export default { render };
