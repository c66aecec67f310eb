// anywidget entry of ls.activations (ActivationView): layer picker, batch selector, channel
// feature-map grid, and the selected map (or token x hidden, or strips) as the tensor view.
import type { RenderProps } from "@anywidget/types";
import { el, ensureStyle } from "../core/dom";
import { entry } from "../core/entry";
import { Requester } from "../core/request";
import { decodeArray, type Payload } from "../core/wire";
import { type Model, mountHeatmap } from "../tensor/bind";
import { type ActInfo, FeatureGrid, FMAP_CSS, type ThumbSet } from "../tensor/featuremaps";

const LAZY_OPTIONS = 500;

export function mountActivations({ model, el: host }: RenderProps<Record<string, unknown>>) {
  ensureStyle("ls-fmap-css", FMAP_CSS);
  const requester = new Requester(model as never, 30_000);
  const [view, cleanup] = mountHeatmap(model as Model, requester);
  const set = (name: string, value: unknown) => {
    model.set(name, value);
    model.save_changes();
  };
  const bar = el("div", "ls-fmap-bar");
  const layerSel = el("select", "ls-layer");
  layerSel.addEventListener("change", () => set("layer", layerSel.value));
  // Thousands of layers (a 48-block transformer lists 8,800) as <option>s cost the first
  // display tens of ms of DOM and style work: past LAZY_OPTIONS the picker holds the shown layer
  // alone until it is used (pointer or keyboard), then every layer.
  let allOptions = false;
  const openList = () => {
    if (allOptions) return;
    allOptions = true;
    sync();
  };
  for (const ev of ["pointerdown", "mousedown", "focus", "keydown"])
    layerSel.addEventListener(ev, openList);
  const batchIn = el("input", "ls-batch");
  batchIn.type = "number";
  batchIn.min = "0";
  batchIn.addEventListener("change", () => set("batch", Number(batchIn.value) || 0));
  const shared = el("input", "ls-shared");
  shared.type = "checkbox";
  shared.addEventListener("change", () => set("shared_scale", shared.checked));
  const l1 = el("label", "", "layer");
  l1.append(layerSel);
  const l2 = el("label", "", "sample");
  l2.append(batchIn);
  const l3 = el("label", "", "shared colour scale");
  l3.prepend(shared);
  bar.append(l1, l2, l3);
  const grid = new FeatureGrid(requester, (c) => set("channel", c));
  let lastThumbs: unknown;
  let shownLayers: unknown = null;
  const sync = () => {
    const layers = (model.get("_layers") as { path: string; shape: number[] }[]) ?? [];
    const current = String(model.get("layer") ?? "");
    const option = (l: { path: string; shape: number[] }) => {
      const o = el("option", "", `${l.path || "(root)"}  (${l.shape.join(", ")})`);
      o.value = l.path;
      return o;
    };
    if (allOptions || layers.length <= LAZY_OPTIONS) {
      if (layerSel.options.length !== layers.length || layers !== shownLayers) {
        layerSel.replaceChildren(...layers.map(option));
        shownLayers = layers;
      }
    } else if (layerSel.options.length !== 1 || layerSel.options[0].value !== current) {
      const shown = layers.find((l) => l.path === current);
      layerSel.replaceChildren(...(shown ? [option(shown)] : []));
      shownLayers = null;
    }
    layerSel.value = current;
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
