// The workspace (ls.explore): one selection (layer, sample, epoch) held here, in the front end,
// and every panel rendered from (selection, source). A click routes the selection to each panel
// at once from the baked state (the exported page's only source), and the kernel, when there is
// one, follows the same selection (the `selected`/`sample`/`epoch` traits) and sends each panel
// its full-resolution data through the panel's model (see panel.ts). A panel whose data for the
// selection is neither baked nor coming says so in words; it never shows another layer's data.
import type { AnyModel } from "@anywidget/types";
import { el, ensureStyle } from "../core/dom";
import { isOffline, NOT_SAVED } from "../core/offline";
import { Requester } from "../core/request";
import { BASE_CSS } from "../core/theme";
import { mountActivations } from "../entries/activations";
import { mountSaliency } from "../entries/saliency";
import { bindScrubber } from "../entries/timeline";
import { mountWeights } from "../entries/weights";
import type { RawGraph } from "../graph/data";
import { GraphView } from "../graph/view";
import { mountProjection } from "../projection/bind";
import { ScrubberView, type TimelineModel } from "../timeline/view";
import { mountUnits } from "../units/bind";
import { CURVES_CSS, CurvesView } from "./curves";
import { PanelModel, type PanelState, putBuffers } from "./panel";

type Model = AnyModel<Record<string, unknown>>;

/** What the page knows of a module without the kernel (ExploreView._layer_map). */
interface LayerInfo {
  param: string | null;
  recorded: boolean;
}

/** ExploreView._layer_map's columns: `param` indexes `params` (-1: none). */
interface LayerTable {
  paths: string[];
  params: string[];
  param: number[];
  recorded: number[];
}

interface Baked {
  weights?: Record<string, PanelState>;
  acts?: Record<string, PanelState>;
  frames?: Record<string, PanelState>;
  projection?: Record<string, PanelState>;
  units?: Record<string, PanelState>;
  budget?: number;
  used?: number;
  left_out?: Record<string, string[]>;
  /** Layers whose dataset panel failed when baked, with the error. */
  failed?: Record<string, Record<string, string>>;
  /** Why the dataset panels of other layers were not baked (data too big), if so. */
  dataset_note?: string;
}

export const EXPLORE_CSS = `
.ls-explore { display: grid; grid-template-columns: minmax(280px, 2fr) minmax(340px, 3fr); gap: 8px;
  align-items: start; }
.ls-explore .ls-ex-panel { min-width: 0; border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 4px;
  padding: 6px; box-sizing: border-box; }
.ls-explore .ls-ex-graph { grid-row: span 2; }
.ls-explore .ls-ex-timeline, .ls-explore .ls-ex-saliency, .ls-explore .ls-ex-projection,
.ls-explore .ls-ex-units { grid-column: 1 / -1; }
.ls-explore .ls-ex-head { display: flex; gap: 8px; align-items: baseline; margin-bottom: 4px; min-width: 0; }
.ls-explore .ls-ex-head .ls-title { margin: 0; flex: none; }
.ls-explore .ls-ex-what { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; }
.ls-explore .ls-ex-note { padding: 16px 8px; text-align: center; }
.ls-explore .ls-ex-note[hidden], .ls-explore .ls-ex-body[hidden] { display: none; }
.ls-explore .ls-ex-body > .ls-view { border: none; padding: 0; }
.ls-explore .ls-graph .ls-graph-main { flex-direction: column; }
.ls-explore .ls-graph .ls-graph-details { flex: none; max-height: 220px; }
.ls-explore .ls-ex-foot { grid-column: 1 / -1; font-size: 11px; }
@media (max-width: 760px) { .ls-explore { grid-template-columns: 1fr; } .ls-explore .ls-ex-graph { grid-row: auto; } }
`;

/** Run `fn` once the frame after the next has been drawn (what was scheduled is painted). */
function afterPaint(fn: () => void): void {
  requestAnimationFrame(() => requestAnimationFrame(fn));
}

class Box {
  readonly root: HTMLElement;
  readonly body = el("div", "ls-ex-body");
  private readonly what = el("span", "ls-ex-what ls-muted");
  private readonly note = el("div", "ls-ex-note ls-muted");

  constructor(cls: string, title: string) {
    this.root = el("div", `ls-ex-panel ${cls}`);
    const head = el("div", "ls-ex-head");
    head.append(el("span", "ls-title", title), this.what);
    this.note.hidden = true;
    this.root.append(head, this.note, this.body);
  }

  /** Say in words why the panel shows nothing for the selection (and hide what it showed). */
  say(text: string): void {
    this.note.textContent = text;
    this.note.hidden = false;
    this.body.hidden = true;
    this.root.dataset.state = "note";
  }

  show(what: string): void {
    this.what.textContent = what;
    this.what.title = what;
    this.note.hidden = true;
    this.body.hidden = false;
    this.root.dataset.state = "shown";
  }

  label(what: string): void {
    this.what.textContent = what;
    this.what.title = what;
  }
}

export class Workspace {
  readonly root = el("div", "ls-view ls-explore");
  private readonly graph: GraphView;
  private readonly panels: Record<string, PanelModel> = {};
  private readonly boxes: Record<string, Box> = {};
  private readonly cleanups: (() => void)[] = [];
  private readonly foot = el("div", "ls-ex-foot ls-muted");
  private layer = "";
  private readonly offline = isOffline();
  private readonly watchers = new Map<PanelModel, () => void>();
  private routedAt = 0;
  /** The row of each module in the `_layers` table it was made from. */
  private layerRows: { table: LayerTable; row: Map<string, number> } | null = null;
  /** The layer each dataset panel was saved at (what an exported page holds). */

  /** The dataset sample whose saliency the page was saved with (the row after the inputs). */
  private heldDataSample: unknown = null;
  private unwatchSaliency: () => void = () => {};

  constructor(private readonly model: Model) {
    ensureStyle("ls-base-css", BASE_CSS);
    ensureStyle("ls-explore-css", EXPLORE_CSS);
    ensureStyle("ls-curves-css", CURVES_CSS);
    this.graph = new GraphView({
      select: (path) => this.choose("selected", path),
      search: () => undefined,
      expanded: () => undefined,
      rendered: () => undefined,
    });
    const g = new Box("ls-ex-graph", "graph");
    g.body.append(this.graph.root);
    this.root.append(g.root);
    const statics =
      (model.get("_panels") as Record<string, PanelState & { channel: string }>) ?? {};
    this.weightsPanel(statics.weights);
    if (statics.acts) this.actsPanel(statics.acts);
    this.heldDataSample = model.get("data_sample") ?? null;
    if (statics.saliency) this.saliencyPanel(statics.saliency);
    if (statics.scrub) this.timelinePanel(statics.scrub);
    if (statics.projection) this.datasetPanel("projection", "projection", statics.projection);
    if (statics.units) this.datasetPanel("units", "units", statics.units);
    this.root.append(this.foot);
    const onMsg = (msg: unknown, buffers: unknown[]) => {
      const m = msg as {
        ls_panel?: string;
        data?: Record<string, unknown>;
        ls_followed?: string;
      } | null;
      if (m?.ls_panel && m.data) this.panels[m.ls_panel]?.receive(m.data, buffers ?? []);
      else if (m?.ls_followed !== undefined && m.ls_followed === this.layer) {
        // The kernel has sent every panel its data for this layer (benchmark hook).
        const t = this.routedAt;
        afterPaint(() => {
          this.root.dataset.liveMs = (performance.now() - t).toFixed(1);
        });
      }
    };
    model.on("msg:custom", onMsg);
    const onSelected = () => this.route();
    const onSample = () => this.routeActs();
    const onDataSample = () => this.routeSaliency();
    const onEpoch = () => this.routeEpoch();
    // A first recorded epoch makes layers "recorded": the timeline panel shows them from then on.
    const onLayers = () => this.routeFrames();
    model.on(
      "change:selected change:_graph change:height change:overlay change:overlay_label",
      onSelected,
    );
    model.on("change:_layers", onLayers);
    model.on("change:sample", onSample);
    model.on("change:data_sample", onDataSample);
    model.on("change:epoch change:_epochs", onEpoch);
    this.cleanups.push(() => {
      model.off("msg:custom", onMsg);
      model.off(
        "change:selected change:_graph change:height change:overlay change:overlay_label",
        onSelected,
      );
      model.off("change:_layers", onLayers);
      model.off("change:sample", onSample);
      model.off("change:data_sample", onDataSample);
      this.unwatchSaliency();
      model.off("change:epoch change:_epochs", onEpoch);
    });
    // Test and benchmark hook: select a layer as a click in the graph does.
    Object.defineProperty(this.root, "lsExplore", {
      value: { select: (path: string) => this.choose("selected", path) },
      configurable: true,
    });
    const t0 = performance.now();
    this.route();
    this.routeEpoch();
    this.sayBudget();
    // Test and benchmark hooks: when every panel has drawn (page clock), and how long it took.
    afterPaint(() => {
      this.root.dataset.paintedAt = String(performance.timeOrigin + performance.now());
      this.root.dataset.viewMs = (performance.now() - t0).toFixed(1);
    });
  }

  /** A selection made in the view: it goes to the model (and the kernel), then routes. */
  private choose(name: string, value: unknown): void {
    if (this.model.get(name) === value) return;
    // a sample of the inputs replaces a picked dataset sample (the kernel does the same)
    if (name === "sample" && this.model.get("data_sample") != null)
      this.model.set("data_sample", null);
    this.model.set(name, value);
    this.model.save_changes();
    if (name === "selected") this.route();
    else if (name === "sample") this.routeActs();
    else if (name === "data_sample") this.routeSaliency();
    else this.routeEpoch();
  }

  private panel(
    name: string,
    identity: string[],
    initial?: PanelState,
    layerState?: PanelState,
  ): PanelModel {
    const start = { ...putBuffers(initial), ...putBuffers(layerState) };
    const p = new PanelModel(name, this.model, identity, start);
    this.panels[name] = p;
    return p;
  }

  private weightsPanel(initial: PanelState | undefined): void {
    const p = this.panel("weights", ["selected"], initial);
    // A row of the table selects the module that owns that parameter.
    p.intercept = (name, value) => {
      if (name !== "selected" || typeof value !== "string") return false;
      const owner = value.includes(".") ? value.slice(0, value.lastIndexOf(".")) : "";
      this.choose("selected", owner);
      return true;
    };
    const box = new Box("ls-ex-weights", "weights");
    this.boxes.weights = box;
    this.root.append(box.root);
    this.cleanups.push(mountWeights({ model: p as never, el: box.body } as never));
  }

  private actsPanel(initial: PanelState): void {
    const p = this.panel("acts", ["layer", "batch"], initial);
    p.intercept = (name, value) => {
      if (name === "layer") this.choose("selected", value);
      else if (name === "batch") this.choose("sample", value);
      else return false;
      return true;
    };
    const box = new Box("ls-ex-acts", "activations");
    this.boxes.acts = box;
    this.root.append(box.root);
    this.cleanups.push(mountActivations({ model: p as never, el: box.body } as never));
  }

  /** Saliency does not depend on the layer: it bakes every sample and follows `sample`. */
  private saliencyPanel(initial: PanelState): void {
    const p = this.panel("saliency", [], initial);
    p.intercept = (name, value) => {
      if (name !== "batch") return false;
      this.choose("sample", value);
      return true;
    };
    const box = new Box("ls-ex-saliency", "saliency");
    this.boxes.saliency = box;
    box.root.dataset.state = "shown";
    this.root.append(box.root);
    this.cleanups.push(mountSaliency({ model: p as never, el: box.body } as never));
  }

  /** A dataset panel (ls.projection, ls.units) of the selected layer. */
  private datasetPanel(name: "projection" | "units", title: string, initial: PanelState): void {
    // Its saved state is shared (selected samples, colouring); its layer's comes from the bake,
    // which always holds the selected layer's.
    const selected = String(this.model.get("selected") ?? "");
    const p = this.panel(name, ["layer"], initial, this.baked()[name]?.[selected]);
    // Its layer is the workspace's: the kernel moves it with the selection.
    p.intercept = (key, value) => {
      if (name === "projection" && key === "selected" && Array.isArray(value)) {
        // One point picked in the projection: that dataset sample drives the saliency panel
        // (through the workspace's data_sample; cleared with the selection). The selection
        // itself still goes to the projection.
        if (value.length === 1) this.choose("data_sample", Number(value[0]));
        else if (value.length === 0) this.choose("data_sample", null);
        return false;
      }
      if (key !== "layer") return false;
      this.choose("selected", value);
      return true;
    };
    const box = new Box(`ls-ex-${name}`, title);
    this.boxes[name] = box;
    this.root.append(box.root);
    const requester = new Requester(p as never, 120_000);
    const mount = name === "projection" ? mountProjection : mountUnits;
    const [panel, cleanup] = mount(p as never, requester);
    box.body.append(panel.root);
    // Test hook, as the single projection view has: the panel under its root's parent.
    (box.body as unknown as { __lsProjection?: unknown }).__lsProjection = panel;
    this.cleanups.push(() => {
      cleanup();
      requester.dispose();
    });
  }

  private routeDataset(): void {
    for (const name of ["projection", "units"] as const) {
      const p = this.panels[name];
      const box = this.boxes[name];
      if (!p || !box) continue;
      const what = this.layer || "(root)";
      p.expected = { layer: this.layer };
      this.watch(p, box, what);
      if (p.get("layer") === this.layer) {
        box.show(what);
        continue;
      }
      const b = this.baked();
      const failed = b.failed?.[name]?.[this.layer];
      if (failed) {
        box.label(what);
        box.say(failed.startsWith(what) ? failed : `${what}: ${failed}`);
        continue;
      }
      this.loadBaked(p, box, b[name]?.[this.layer], what, b.dataset_note || undefined);
    }
  }

  private timelinePanel(initial: PanelState): void {
    const p = this.panel("scrub", ["layer"], initial);
    p.intercept = (name, value) => {
      if (name === "layer") this.choose("selected", value);
      else if (name === "epoch") this.choose("epoch", value);
      else return false;
      return true;
    };
    const box = new Box("ls-ex-timeline", "training");
    this.boxes.scrub = box;
    const curves = new CurvesView();
    const scrubber = new ScrubberView(p as unknown as TimelineModel);
    box.body.append(scrubber.root);
    // The curves are not per layer: they stay when the panel says a layer has no history.
    box.root.insertBefore(curves.root, box.root.children[1]);
    this.root.append(box.root);
    this.cleanups.push(bindScrubber(p as unknown as TimelineModel, scrubber, curves));
  }

  private baked(): Baked {
    return (this.model.get("_baked") as Baked) ?? {};
  }

  private info(path: string): LayerInfo | undefined {
    const table = this.model.get("_layers") as LayerTable | undefined;
    if (!table?.paths) return undefined;
    if (this.layerRows?.table !== table)
      this.layerRows = { table, row: new Map(table.paths.map((p, i) => [p, i])) };
    const i = this.layerRows.row.get(path);
    if (i === undefined) return undefined;
    const param = table.param[i];
    return { param: param >= 0 ? table.params[param] : null, recorded: table.recorded[i] === 1 };
  }

  /** What a panel says when the selection's data is not in this page. */
  private missing(what: string, why?: string): string {
    if (!this.offline) return `loading ${what} from the kernel…`;
    const budget = this.baked().budget ?? 0;
    const mb = Math.max(1, Math.ceil((budget * 2) / 1e6));
    return why
      ? `${what}: ${NOT_SAVED} (${why})`
      : `${what}: ${NOT_SAVED} (its ${(budget / 1e6).toFixed(1)} MB budget was full); re-run ls.explore(..., budget="${mb}MB")`;
  }

  /** Load `kind`'s baked state for `key` into panel p when it has one; else say why not. */
  private loadBaked(
    p: PanelModel,
    box: Box,
    state: PanelState | undefined,
    what: string,
    why?: string,
  ): void {
    if (state) {
      p.load(putBuffers(state));
      box.show(what);
    } else {
      box.say(this.missing(what, why));
      box.label(what);
    }
  }

  private route(): void {
    const path = String(this.model.get("selected") ?? "");
    const changed = path !== this.layer;
    this.layer = path;
    this.root.dataset.selected = path;
    const graph = this.model.get("_graph") as RawGraph | string | undefined;
    if (!graph || (typeof graph !== "string" && !graph.schema)) return; // the view is closing
    this.graph.update({
      graph,
      selected: path,
      search: "",
      overlay: (this.model.get("overlay") as Record<string, number | string>) ?? {},
      overlayLabel: (this.model.get("overlay_label") as string) ?? "",
      expanded: null,
      height: Number(this.model.get("height") ?? 520),
    });
    if (!changed && this.root.dataset.routed === "1") return;
    this.root.dataset.routed = "1";
    const t = performance.now();
    this.routedAt = t;
    delete this.root.dataset.liveMs;
    delete this.root.dataset.routeMs;
    this.routeWeights();
    this.routeActs();
    this.routeFrames();
    this.routeDataset();
    afterPaint(() => {
      if (this.routedAt === t) this.root.dataset.routeMs = (performance.now() - t).toFixed(1);
    });
  }

  private routeWeights(): void {
    const p = this.panels.weights;
    const box = this.boxes.weights;
    const name = this.layer || "(root)";
    const param = this.info(this.layer)?.param ?? null;
    if (!param) {
      p.expected = { selected: null };
      box.label(name);
      box.say(`${name} has no parameters`);
      return;
    }
    p.expected = { selected: param };
    this.watch(p, box, param);
    this.loadBaked(p, box, this.baked().weights?.[param], param);
  }

  private routeSaliency(): void {
    const p = this.panels.saliency;
    const box = this.boxes.saliency;
    if (!p || !box) return;
    this.unwatchSaliency();
    const picked = this.model.get("data_sample");
    if (typeof picked === "number") {
      const what = `dataset sample ${picked}`;
      box.label(what);
      const rows = Number((p.get("_info") as { n?: number } | undefined)?.n ?? 0);
      if (this.offline) {
        if (picked !== this.heldDataSample) {
          const held =
            typeof this.heldDataSample === "number"
              ? ` and of dataset sample ${this.heldDataSample}`
              : "";
          box.say(
            `the saliency of ${what} is not baked into this page: a running kernel computes it (the page holds the saliency of the inputs' samples${held})`,
          );
          return;
        }
        // baked: the row after the inputs
        if (p.get("batch") !== rows - 1) p.load({ batch: rows - 1 });
        box.show(what);
        return;
      }
      // The kernel computes that sample's row and shows it (or says why not in the panel).
      box.say(`computing the saliency of ${what}…`);
      const done = () => {
        this.unwatchSaliency();
        box.show(what);
      };
      p.on("change:_samples change:_error", done);
      this.unwatchSaliency = () => {
        p.off("change:_samples change:_error", done);
        this.unwatchSaliency = () => {};
      };
      return;
    }
    const sample = Number(this.model.get("sample") ?? 0);
    if (p.get("batch") !== sample) p.load({ batch: sample });
    box.show(`sample ${sample}`);
  }

  private routeActs(): void {
    this.routeSaliency();
    const p = this.panels.acts;
    const box = this.boxes.acts;
    if (!p || !box) return;
    const sample = Number(this.model.get("sample") ?? 0);
    const name = this.layer || "(root)";
    p.expected = { layer: this.layer, batch: sample };
    const what = `${name}, sample ${sample}`;
    this.watch(p, box, what);
    const baked = this.baked().acts?.[this.layer];
    const bakedSample = baked ? Number((baked.state as { batch?: number }).batch ?? 0) : -1;
    const why =
      baked && bakedSample !== sample
        ? `it holds sample ${bakedSample} of each layer; the kernel shows the others`
        : undefined;
    this.loadBaked(p, box, bakedSample === sample ? baked : undefined, what, why);
  }

  private routeFrames(): void {
    const p = this.panels.scrub;
    const box = this.boxes.scrub;
    if (!p || !box) return;
    const name = this.layer || "(root)";
    p.expected = { layer: this.layer };
    if (!this.info(this.layer)?.recorded) {
      box.label(name);
      box.say(`${name} has no recorded parameters`);
      return;
    }
    this.watch(p, box, name);
    this.loadBaked(p, box, this.baked().frames?.[this.layer], name);
  }

  /** When the kernel's data for the expected layer arrives, the panel shows it. */
  private watch(p: PanelModel, box: Box, what: string): void {
    const keys = p.identity;
    const check = () => {
      if (keys.every((k) => !(k in p.expected) || p.get(k) === p.expected[k])) box.show(what);
    };
    const events = keys.map((k) => `change:${k}`).join(" ");
    const prev = this.watchers.get(p);
    if (prev) p.off(events, prev);
    this.watchers.set(p, check);
    p.on(events, check);
  }

  private routeEpoch(): void {
    const epoch = Number(this.model.get("epoch") ?? 0);
    this.root.dataset.epoch = String(epoch);
    const p = this.panels.scrub;
    if (!p) return;
    if (p.get("epoch") !== epoch) p.load({ epoch });
  }

  private sayBudget(): void {
    const b = this.baked();
    const left = Object.values(b.left_out ?? {}).reduce((n, l) => n + l.length, 0);
    const used = ((b.used ?? 0) / 1e6).toFixed(1);
    const budget = ((b.budget ?? 0) / 1e6).toFixed(1);
    this.foot.textContent =
      left > 0
        ? `saved with this view: ${used} of ${budget} MB; ${left} panels of later layers left out (budget=)`
        : `saved with this view: every layer's panels (${used} of ${budget} MB)`;
  }

  dispose(): void {
    for (const c of this.cleanups) c();
    this.graph.dispose();
  }
}
