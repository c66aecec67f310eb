// anywidget entry of the scrubber inside ls.timeline (TimelineView's ScrubberView). With
// `curves=False` (no bqplot figures: hosts without widget containers, such as marimo) the loss and
// metric curves come as data in `_curves` and are drawn here, above the scrubber.
import type { RenderProps } from "@anywidget/types";
import { ensureStyle } from "../core/dom";
import { entry } from "../core/entry";
import { CURVES_CSS, CurvesView, type RawCurves } from "../explore/curves";
import { ScrubberView, type TimelineModel } from "../timeline/view";

/** The scrubber's (and its curves') bindings to its model; returns the cleanup. */
export function bindScrubber(m: TimelineModel, view: ScrubberView, curves: CurvesView): () => void {
  const onCurves = () => {
    const raw = m.get("_curves") as RawCurves | undefined;
    curves.root.hidden = !raw || Object.keys(raw).length === 0;
    curves.update(raw);
    curves.mark(Number(m.get("epoch") ?? 0));
  };
  const onEpoch = () => {
    view.onEpoch();
    curves.mark(Number(m.get("epoch") ?? 0));
  };
  onCurves();
  requestAnimationFrame(() => curves.redraw());
  m.on("change:_curves", onCurves);
  m.on("change:frames", view.onFrames);
  m.on("change:frames_tail", view.onFrames);
  m.on("change:epoch", onEpoch);
  m.on("change:follow", view.onFollow);
  m.on("change:notes", view.onNotes);
  m.on("change:layers", view.onLayers);
  m.on("change:layer", view.onLayers);
  return () => {
    m.off("change:_curves", onCurves);
    m.off("change:frames", view.onFrames);
    m.off("change:frames_tail", view.onFrames);
    m.off("change:epoch", onEpoch);
    m.off("change:follow", view.onFollow);
    m.off("change:notes", view.onNotes);
    m.off("change:layers", view.onLayers);
    m.off("change:layer", view.onLayers);
    view.dispose();
  };
}

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  ensureStyle("ls-curves-css", CURVES_CSS);
  const m = model as unknown as TimelineModel;
  const curves = new CurvesView();
  const view = new ScrubberView(m);
  view.root.prepend(curves.root);
  el.append(view.root);
  return bindScrubber(m, view, curves);
}

export default entry(render);
