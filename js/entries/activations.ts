// anywidget entry of ls.activations (ActivationView): layer picker, batch selector, channel
// feature-map grid, and the selected map (or token x hidden, or strips) as the tensor view.
import type { RenderProps } from "@anywidget/types";
import { el, ensureStyle, LazySelect } from "../core/dom";
import { entry } from "../core/entry";
import { Requester } from "../core/request";
import { decodeArray, type Payload } from "../core/wire";
import { type Model, mountHeatmap } from "../tensor/bind";
import { type ActInfo, FeatureGrid, FMAP_CSS, type ThumbSet } from "../tensor/featuremaps";

export function mountActivations({ model, el: host }: RenderProps<Record<string, unknown>>) {
  ensureStyle("ls-fmap-css", FMAP_CSS);
  const requester = new Requester(model as never, 30_000);
  const [view, cleanup] = mountHeatmap(model as Model, requester);
  const set = (name: string, value: unknown) => {
    model.set(name, value);
    model.save_changes();
  };
  const bar = el("div", "ls-fmap-bar");
  const layerSel = new LazySelect<{ path: string; shape: number[] }>(
    "ls-layer",
    (l) => [l.path, `${l.path || "(root)"}  (${l.shape.join(", ")})`],
    (path) => set("layer", path),
  );
  const batchIn = el("input", "ls-batch");
  batchIn.type = "number";
  batchIn.min = "0";
  batchIn.addEventListener("change", () => set("batch", Number(batchIn.value) || 0));
  const shared = el("input", "ls-shared");
  shared.type = "checkbox";
  shared.addEventListener("change", () => set("shared_scale", shared.checked));
  const l1 = el("label", "", "layer");
  l1.append(layerSel.root);
  const l2 = el("label", "", "sample");
  l2.append(batchIn);
  const l3 = el("label", "", "shared colour scale");
  l3.prepend(shared);
  bar.append(l1, l2, l3);
  const grid = new FeatureGrid(requester, (c) => set("channel", c));
  let lastThumbs: unknown;
  const sync = () => {
    const layers = (model.get("_layers") as { path: string; shape: number[] }[]) ?? [];
    layerSel.show(layers, String(model.get("layer") ?? ""));
    const info = model.get("_act") as ActInfo | undefined;
    batchIn.max = String(Math.max(0, (info?.n ?? 1) - 1));
    batchIn.value = String(model.get("batch") ?? 0);
    shared.checked = Boolean(model.get("shared_scale"));
    l3.hidden = info?.kind !== "conv";
    const t = model.get("_thumbs") as Record<string, unknown> | undefined;
    let baked: ThumbSet | undefined;
    if (t && "codes" in t) {
      const d = decodeArray(t.codes as Payload);
      baked = {
        layer: String(t.layer),
        batch: Number(t.batch),
        start: Number(t.start),
        count: Number(t.count),
        thumb: t.thumb as [number, number],
        map: String(t.map),
        codes: d.data as Uint8Array,
      };
    }
    const stale = t !== lastThumbs;
    lastThumbs = t;
    grid.update(
      info?.kind ? info : undefined,
      Number(model.get("batch") ?? 0),
      Number(model.get("channel") ?? 0),
      baked,
      stale,
    );
  };
  view.root.classList.add("ls-activations");
  view.root.insertBefore(grid.root, view.root.firstChild);
  view.root.insertBefore(bar, view.root.firstChild);
  host.append(view.root);
  sync();
  const events =
    "change:_layers change:layer change:_act change:batch change:channel change:shared_scale change:_thumbs";
  model.on(events, sync);
  return () => {
    model.off(events, sync);
    cleanup();
    requester.dispose();
  };
}

// The view without its styles, for hosts that bring them (the explore workspace). Not named
// `render`: anywidget would take a named `render` over the default export.
export default entry(mountActivations);
