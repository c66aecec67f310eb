// anywidget entry of the scrubber inside ls.timeline (TimelineView's ScrubberView).
import type { RenderProps } from "@anywidget/types";
import { entry } from "../core/entry";
import { ScrubberView, type TimelineModel } from "../timeline/view";

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const m = model as unknown as TimelineModel;
  const view = new ScrubberView(m);
  el.append(view.root);
  m.on("change:frames", view.onFrames);
  m.on("change:epoch", view.onEpoch);
  m.on("change:follow", view.onFollow);
  m.on("change:layers", view.onLayers);
  m.on("change:layer", view.onLayers);
  return () => {
    m.off("change:frames", view.onFrames);
    m.off("change:epoch", view.onEpoch);
    m.off("change:follow", view.onFollow);
    m.off("change:layers", view.onLayers);
    m.off("change:layer", view.onLayers);
    view.dispose();
  };
}

export default entry(render);
