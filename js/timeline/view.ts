// The epoch scrubber: slider, play/pause, speed, arrow keys, layer picker, and the selected
// layer's panels (weight heatmap, histograms over epochs, probe activation, grad-norm and
// update-ratio curves). A frame repaints from the frames already in the browser; the kernel only
// hears the new epoch afterwards (throttled), so a busy kernel never slows a drag.
import { el, ensureStyle, LazySelect } from "../core/dom";
import { shortNumber } from "../core/format";
import { isOffline, NOT_SAVED } from "../core/offline";
import { BASE_CSS } from "../core/theme";
import {
  type Curve,
  decodeFrames,
  type Frames,
  FrameTimes,
  indexOfEpoch,
  markerX,
  paintCodes,
  pointName,
  type RawFrames,
  type RawTail,
  type TensorFrames,
} from "./data";

export interface TimelineModel {
  get(name: string): unknown;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(name: string, cb: () => void): void;
  off(name: string, cb: () => void): void;
  widget_manager?: { get_model(id: string): Promise<TimelineModel> };
}

const CSS = `
.ls-timeline-scrub { outline: none; }
.ls-timeline-scrub .ls-tl-controls { margin-bottom: 6px; }
.ls-timeline-scrub .ls-tl-slider { flex: 1 1 240px; min-width: 160px; }
.ls-timeline-scrub button, .ls-timeline-scrub select { font: inherit; color: inherit;
  background: var(--jp-layout-color1, #fff); border: 1px solid var(--jp-border-color1, #bdbdbd); border-radius: 3px; }
.ls-timeline-scrub .ls-tl-play { width: 32px; }
.ls-timeline-scrub .ls-tl-epoch { min-width: 96px; font-variant-numeric: tabular-nums; }
.ls-timeline-scrub .ls-tl-panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px; }
.ls-timeline-scrub .ls-tl-panel { min-width: 0; }
.ls-timeline-scrub .ls-tl-box { position: relative; height: 170px; border: 1px solid var(--jp-border-color2, #e0e0e0);
  background: var(--jp-layout-color2, #eee); }
.ls-timeline-scrub .ls-tl-box canvas { position: absolute; inset: 0; width: 100%; height: 100%; image-rendering: pixelated; }
.ls-timeline-scrub .ls-tl-mark { position: absolute; pointer-events: none; background: #d62728; }
.ls-timeline-scrub .ls-tl-mark.h { left: 0; right: 0; height: 2px; opacity: 0.8; }
.ls-timeline-scrub .ls-tl-mark.v { top: 0; bottom: 0; width: 2px; opacity: 0.8; }
.ls-timeline-scrub .ls-tl-note { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  text-align: center; padding: 8px; }
.ls-timeline-scrub .ls-tl-note[hidden], .ls-timeline-scrub .ls-tl-mark[hidden] { display: none; }
.ls-timeline-scrub .ls-tl-sub { font-size: 11px; overflow-wrap: anywhere; min-height: 2.6em; }
.ls-timeline-scrub .ls-tl-axis { display: flex; justify-content: space-between; font-size: 11px; }
.ls-timeline-scrub .ls-tl-notes { font-size: 12px; color: #8a5a00; margin: 2px 0; }
`;

const SPEEDS = [1, 2, 5, 10, 20];

interface Panel {
  root: HTMLElement;
  title: HTMLElement;
  sub: HTMLElement;
  box: HTMLElement;
  canvas: HTMLCanvasElement;
  note: HTMLElement;
  axis: HTMLElement;
}

function panel(cls: string, title: string): Panel {
  const root = el("div", `ls-tl-panel ${cls}`);
  const t = el("div", "ls-title", title);
  const sub = el("div", "ls-tl-sub ls-muted");
  const box = el("div", "ls-tl-box");
  const canvas = el("canvas", "ls-tl-canvas");
  const note = el("div", "ls-tl-note ls-muted");
  note.hidden = true;
  const axis = el("div", "ls-tl-axis ls-muted");
  box.append(canvas, note);
  root.append(t, sub, box, axis);
  return { root, title: t, sub, box, canvas, note, axis };
}

/** Image state of a tensor panel: a canvas of h x w pixels and its pixel buffer. */
interface Image {
  frames: TensorFrames;
  ctx: CanvasRenderingContext2D;
  data: ImageData;
  px: Uint32Array;
}

function makeImage(p: Panel, frames: TensorFrames | null): Image | null {
  p.note.hidden = frames !== null;
  if (!frames) {
    p.canvas.width = 1;
    p.canvas.height = 1;
    return null;
  }
  p.canvas.width = frames.w;
  p.canvas.height = frames.h;
  const ctx = p.canvas.getContext("2d") as CanvasRenderingContext2D;
  const data = ctx.createImageData(frames.w, frames.h);
  p.sub.textContent = `${frames.name}  [${frames.shape.join(" x ")}]  ${frames.h} x ${frames.w} cells`;
  const [lo, hi] = [frames.scale.lo, frames.scale.hi];
  p.axis.replaceChildren(el("span", "", shortNumber(lo)), el("span", "", shortNumber(hi)));
  return { frames, ctx, data, px: new Uint32Array(data.data.buffer) };
}

function paintImage(p: Panel, img: Image | null, i: number): void {
  if (!img) return;
  const ok = i >= 0 && i < img.frames.count && img.frames.have[i] === 1;
  if (!ok) {
    p.note.hidden = false;
    p.note.textContent = `thinned at this ${p.root.dataset.unit || "epoch"} (see rec.thinned)`;
    img.px.fill(0);
  } else {
    p.note.hidden = true;
    paintCodes(img.frames.frame(i), img.frames.table, img.px);
  }
  img.ctx.putImageData(img.data, 0, 0);
}

function drawCurves(
  canvas: HTMLCanvasElement,
  series: [string, Curve | null, string][],
  xmax: number,
): void {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, canvas.clientWidth || 250);
  const h = Math.max(1, canvas.clientHeight || 170);
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const style = getComputedStyle(canvas);
  ctx.font = `10px ${style.fontFamily || "sans-serif"}`;
  const rows = series.length;
  series.forEach(([label, c, color], k) => {
    const top = (k * h) / rows + 12;
    const bottom = ((k + 1) * h) / rows - 4;
    ctx.fillStyle = style.color || "#444";
    if (!c || c.y.length === 0) {
      ctx.fillText(`${label}: not recorded`, 4, top);
      return;
    }
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const v of c.y) {
      if (v > 0 && Number.isFinite(v)) {
        const l = Math.log10(v);
        lo = Math.min(lo, l);
        hi = Math.max(hi, l);
      }
    }
    if (!(hi >= lo)) {
      ctx.fillText(`${label}: no values`, 4, top);
      return;
    }
    if (hi - lo < 1e-6) {
      lo -= 0.5;
      hi += 0.5;
    }
    ctx.fillText(`${label} (log) ${shortNumber(10 ** lo)} .. ${shortNumber(10 ** hi)}`, 4, top - 2);
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.25;
    ctx.beginPath();
    // Steps where nothing was measured (NaN: update ratios are measured every Nth step) are
    // bridged; each measured point also gets a dot, so a sparse series stays visible.
    let pen = false;
    const dots: [number, number][] = [];
    for (let i = 0; i < c.x.length; i++) {
      const v = c.y[i];
      if (!(v > 0 && Number.isFinite(v))) continue;
      const x = (c.x[i] / Math.max(1, xmax)) * w;
      const y = bottom - ((Math.log10(v) - lo) / (hi - lo)) * (bottom - top - 4);
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
      dots.push([x, y]);
    }
    ctx.stroke();
    if (dots.length <= 60) {
      ctx.fillStyle = color;
      for (const [x, y] of dots) ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
  });
}

export class ScrubberView {
  readonly root = el("div", "ls-view ls-timeline-scrub");
  readonly times = new FrameTimes();
  private readonly play = el("button", "ls-tl-play", "▶");
  private readonly slider = el("input", "ls-tl-slider");
  private readonly label = el("span", "ls-tl-epoch ls-mono");
  private readonly speed = el("select", "ls-tl-speed");
  /** The layer picker (a 48-block transformer lists ~2,600 layers: made on first use). */
  private readonly picker = new LazySelect<string>(
    "ls-tl-layer",
    (name) => [name, name || "(root)"],
    (name) => this.pick(name),
  );
  private readonly followBox = el("input", "ls-tl-follow");
  private readonly followLabel = el("label", "ls-tl-follow-label", "follow latest ");
  private readonly status = el("div", "ls-muted ls-tl-status");
  /** What the run did not keep whole, or measured on some steps only (the kernel's words). */
  private readonly notes = el("div", "ls-tl-notes");
  private readonly error = el("div", "ls-error");
  private readonly weight = panel("ls-tl-weight", "weights");
  private readonly hist = panel("ls-tl-hist", "weight histograms over epochs");
  private readonly act = panel("ls-tl-act", "activation on the probe batch");
  private readonly curves = panel("ls-tl-curves", "gradient norm and update ratio");
  private readonly histMark = el("div", "ls-tl-mark h");
  private readonly curveMark = el("div", "ls-tl-mark v");
  private frames: Frames | null = null;
  private stale = false;
  private wImg: Image | null = null;
  private aImg: Image | null = null;
  private index = -1;
  /** Show each new epoch as it arrives; any scrub turns it off, the "follow latest" box on. */
  private follow = true;
  /** What changed since the last settle(): frames (a new epoch, another layer) and/or epoch. */
  private pending = { frames: false, epoch: false };
  private settleQueued = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private sendTimer: ReturnType<typeof setTimeout> | undefined;
  private reportTimer: ReturnType<typeof setTimeout> | undefined;
  private lastSent = 0;
  private markerTimer: ReturnType<typeof setTimeout> | undefined;
  /** The bqplot marker models (loss at the epoch's last step, metrics at the epoch). */
  private markers: { loss?: TimelineModel; metric?: TimelineModel } = {};

  constructor(private readonly model: TimelineModel) {
    ensureStyle("ls-base-css", BASE_CSS);
    ensureStyle("ls-timeline-css", CSS);
    this.root.tabIndex = 0;
    this.slider.type = "range";
    this.slider.min = "0";
    this.slider.step = "1";
    this.slider.setAttribute("aria-label", "epoch");
    for (const s of SPEEDS) {
      const o = el("option", "", `${s} epoch/s`);
      o.value = String(s);
      this.speed.append(o);
    }
    this.speed.value = "5";
    this.play.title = "play / pause (space)";
    const controls = el("div", "ls-row ls-tl-controls");
    controls.append(
      this.play,
      this.slider,
      this.label,
      this.speed,
      this.followLabel,
      el("span", "ls-muted", "layer"),
      this.picker.root,
    );
    this.followBox.type = "checkbox";
    this.followLabel.title =
      "show each new epoch as training records it (scrubbing to an older epoch turns this off: the view stays where you put it)";
    this.followLabel.prepend(this.followBox);
    this.follow = (model.get("follow") as boolean | undefined) ?? true;
    this.followBox.checked = this.follow;
    this.followBox.addEventListener("change", () => {
      this.setFollow(this.followBox.checked);
      if (this.follow && this.frames) this.showAndSend(this.frames.epochs.length - 1);
    });
    this.error.hidden = true;
    const panels = el("div", "ls-tl-panels");
    panels.append(this.weight.root, this.hist.root, this.act.root, this.curves.root);
    this.hist.box.append(this.histMark);
    this.curves.box.append(this.curveMark);
    this.root.append(controls, this.status, this.notes, this.error, panels);
    this.root.dataset.epoch = "";

    this.slider.addEventListener("input", () => this.userScrub(Number(this.slider.value)));
    this.play.addEventListener("click", () => this.toggle());
    this.speed.addEventListener("change", () => {
      if (this.timer !== undefined) {
        this.toggle();
        this.toggle();
      }
    });
    this.root.addEventListener("keydown", (e) => {
      if (e.target === this.picker.root || e.target === this.speed) return;
      if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
        // Handled here also on the focused slider (its native step would fire a second input).
        this.userScrub(this.index + (e.key === "ArrowLeft" ? -1 : 1));
        e.preventDefault();
        e.stopPropagation(); // Lab would move between cells
      } else if (e.key === "Home" || e.key === "End") {
        this.userScrub(e.key === "Home" ? 0 : Number.MAX_SAFE_INTEGER);
        e.preventDefault();
        e.stopPropagation();
      } else if (e.key === " ") {
        this.toggle();
        e.preventDefault();
        e.stopPropagation();
      }
    });
    (this.root as unknown as { lsFrameTimes: number[] }).lsFrameTimes = this.times.times;
    this.onFrames();
    this.onNotes();
    this.onLayers();
    this.findMarkers();
  }

  /** The bqplot epoch markers, moved here while scrubbing so they follow without the kernel. */
  private findMarkers(): void {
    const ids = (this.model.get("_markers") as Record<string, string>) ?? {};
    const wm = this.model.widget_manager;
    if (!wm) return;
    for (const key of ["loss", "metric"] as const) {
      const id = ids[key];
      if (!id) continue;
      wm.get_model(id).then(
        (m) => {
          this.markers[key] = m;
        },
        () => undefined, // no marker: the curves just do not follow (never an error)
      );
    }
  }

  /**
   * bqplot redraws its SVG on each change, which costs a frame or two here: during a fast scrub
   * the markers move once the scrub pauses for 120 ms (play at up to 5 epoch/s moves them every
   * step), so the heatmaps keep every frame.
   */
  private moveMarkers(i: number, now = false): void {
    if (this.markerTimer !== undefined) clearTimeout(this.markerTimer);
    this.markerTimer = undefined;
    if (!now) {
      this.markerTimer = setTimeout(() => this.moveMarkers(this.index, true), 120);
      return;
    }
    const { loss, metric } = this.markers;
    const at = markerX(this.frames as Frames, i);
    // Synced to the kernel too (one message a pause), so its state matches what is drawn.
    for (const [m, x] of [
      [loss, at.loss],
      [metric, at.metric],
    ] as const) {
      if (!m) continue;
      m.set("x", new Float64Array([x, x]));
      m.save_changes();
    }
  }

  readonly onNotes = (): void => {
    const text = (this.model.get("notes") as string | undefined) ?? "";
    this.notes.textContent = text;
    this.notes.hidden = !text;
  };

  /** The user picked a layer in the picker. */
  private pick(name: string): void {
    this.model.set("layer", name);
    this.model.save_changes();
    this.status.textContent = isOffline()
      ? `${NOT_SAVED}: the frames of ${name || "(root)"}`
      : "asking the kernel for this layer's frames…";
  }

  readonly onLayers = (): void => {
    const layers = (this.model.get("layers") as string[]) ?? [];
    const current = (this.model.get("layer") as string) ?? "";
    const missing =
      current && !layers.includes(current) ? `${current} (no recorded parameters)` : undefined;
    this.picker.show(layers, current, missing);
  };

  /** The (frames, frames_tail) pair decoded last: a kernel update sets both, heard twice. */
  private decoded: [unknown, unknown] = [undefined, undefined];

  readonly onFrames = (): void => {
    const whole = this.model.get("frames") as RawFrames | undefined;
    const tail = this.model.get("frames_tail") as RawTail | undefined;
    if (this.decoded[0] === whole && this.decoded[1] === tail && whole !== undefined) return;
    this.decoded = [whole, tail];
    try {
      this.frames = decodeFrames(whole, tail);
      this.error.hidden = true;
    } catch (e) {
      this.frames = null;
      this.error.hidden = false;
      this.error.textContent = `could not read the timeline's frames: ${(e as Error).message}`;
    }
    const f = this.frames;
    const layer = (this.model.get("layer") as string) ?? "";
    this.setUnit(f?.axis ?? "epoch");
    if (!f || f.epochs.length === 0) {
      this.status.textContent =
        f?.axis === "step"
          ? "nothing recorded yet: call rec.epoch() every N steps"
          : "no epoch recorded yet: call rec.epoch() at the end of each epoch";
    } else if (f.layer !== layer) {
      this.status.textContent = isOffline()
        ? `${NOT_SAVED}: the frames of ${layer || "(root)"} (it holds ${f.layer || "none"})`
        : `the frames of ${layer || "this layer"} need the kernel (this view holds ${f.layer || "none"})`;
    } else if (!f.param && !f.act) {
      this.status.textContent = `${layer || "(root)"} has no recorded parameters or activations`;
    } else {
      this.status.textContent = "";
    }
    this.onLayers();
    this.root.dataset.layer = f?.layer ?? "";
    this.slider.max = String(Math.max(0, (f?.epochs.length ?? 1) - 1));
    this.slider.disabled = !f || f.epochs.length < 2;
    // Frames of another layer are never drawn under this layer's name.
    this.stale = !!f && f.layer !== layer;
    this.wImg = makeImage(this.weight, this.stale ? null : (f?.param ?? null));
    this.aImg = makeImage(this.act, this.stale ? null : (f?.act ?? null));
    this.weight.note.textContent = "no weights recorded for this layer";
    this.act.note.textContent = "no activation recorded for this layer";
    this.setupHist();
    this.setupCurves();
    this.index = -1;
    this.pending.frames = true;
    this.queueSettle();
  };

  private setupHist(): void {
    const h = this.stale ? null : (this.frames?.hist ?? null);
    const p = this.hist;
    p.note.hidden = h !== null;
    p.note.textContent = "no histograms for this layer";
    this.histMark.hidden = h === null;
    if (!h) return;
    const rows = h.epochs.length;
    p.canvas.width = Math.max(1, h.bins);
    p.canvas.height = Math.max(1, rows);
    const ctx = p.canvas.getContext("2d") as CanvasRenderingContext2D;
    const img = ctx.createImageData(p.canvas.width, p.canvas.height);
    paintCodes(h.codes, h.table, new Uint32Array(img.data.buffer));
    ctx.putImageData(img, 0, 0);
    p.sub.textContent = `${this.frames?.param?.name ?? ""}: x value, y ${this.frames?.axis ?? "epoch"} (first at top)`;
    p.axis.replaceChildren(el("span", "", shortNumber(h.lo)), el("span", "", shortNumber(h.hi)));
  }

  private setupCurves(): void {
    const f = this.stale ? null : this.frames;
    const p = this.curves;
    const xmax = f?.steps.length ? f.steps[f.steps.length - 1] : 1;
    const any = !!(f?.grad || f?.ratio);
    p.note.hidden = any;
    p.note.textContent = "no gradient norms or update ratios recorded for this layer";
    this.curveMark.hidden = !f?.param;
    p.sub.textContent = f?.param ? `${f.param.name}, x: step` : "";
    p.axis.replaceChildren(el("span", "", "0"), el("span", "", String(xmax)));
    // Nothing recorded: the note says so, and the canvas stays empty under it (no second text).
    if (!any) {
      p.canvas.getContext("2d")?.clearRect(0, 0, p.canvas.width, p.canvas.height);
      return;
    }
    // Drawn after layout (the canvas needs its size on screen).
    requestAnimationFrame(() =>
      drawCurves(
        p.canvas,
        [
          ["grad norm", f?.grad ?? null, "#1f77b4"],
          ["update ratio", f?.ratio ?? null, "#ff7f0e"],
        ],
        xmax,
      ),
    );
  }

  /**
   * Name the axis in what the run counts: epochs, or steps for a run whose epoch() is called
   * every N steps (the slider, the play speed, the panels' "thinned at this ..." notes).
   */
  private setUnit(unit: "epoch" | "step"): void {
    if (this.root.dataset.unit === unit) return;
    this.root.dataset.unit = unit;
    for (const p of [this.weight, this.act, this.hist, this.curves]) p.root.dataset.unit = unit;
    this.slider.setAttribute(
      "aria-label",
      unit === "step" ? "step (recorded every N steps)" : "epoch",
    );
    this.hist.title.textContent = `weight histograms over ${unit}s`;
    for (const o of Array.from(this.speed.options)) {
      o.textContent = `${o.value} ${unit === "step" ? "snapshot" : "epoch"}/s`;
    }
  }

  /** The kernel (or a link) set `epoch`: show it (see settle). */
  readonly onEpoch = (): void => {
    this.pending.epoch = true;
    this.queueSettle();
  };

  /** The kernel (or Python) turned following on or off. */
  readonly onFollow = (): void => {
    this.follow = (this.model.get("follow") as boolean | undefined) ?? true;
    this.followBox.checked = this.follow;
  };

  // Frames and epoch of one kernel update arrive as separate change events in no fixed order;
  // decide once both are in.
  private queueSettle(): void {
    if (this.settleQueued) return;
    this.settleQueued = true;
    queueMicrotask(() => this.settle());
  }

  /**
   * Which epoch to show after an update. New frames while following: the newest. New frames
   * while not following: the epoch already shown, whatever epoch the kernel sent with them (a
   * kernel busy training has not heard of the scrub yet); the kernel is told. Otherwise the
   * kernel's (or a link's) epoch.
   */
  private settle(): void {
    this.settleQueued = false;
    const { frames } = this.pending;
    this.pending = { frames: false, epoch: false };
    const f = this.frames;
    if (!f || f.epochs.length === 0) {
      this.label.textContent = `${f?.axis ?? "epoch"} –`;
      return;
    }
    const shown = this.root.dataset.epoch ? Number(this.root.dataset.epoch) : null;
    const kernel = (this.model.get("epoch") as number) ?? 0;
    let i: number;
    if (frames && shown !== null && this.follow) i = f.epochs.length - 1;
    else if (frames && shown !== null) i = indexOfEpoch(f.epochs, shown);
    else i = indexOfEpoch(f.epochs, kernel);
    if (i !== this.index) this.show(i);
    if (f.epochs[i] !== kernel) this.sendEpoch();
  }

  private setFollow(on: boolean): void {
    this.followBox.checked = on;
    if (on === this.follow) return;
    this.follow = on;
    this.model.set("follow", on);
    this.model.save_changes();
  }

  /** A scrub by the user: the view stays where the user puts it; at the newest epoch (End, or
   * a drag to the right end) it follows again. */
  private userScrub(i: number): void {
    const n = this.frames?.epochs.length ?? 0;
    this.setFollow(n > 0 && i >= n - 1);
    this.scrubTo(i);
  }

  /** Show frame i now (no kernel round trip) and tell the kernel afterwards. */
  scrubTo(i: number): void {
    const f = this.frames;
    if (!f || f.epochs.length === 0) return;
    const j = Math.max(0, Math.min(f.epochs.length - 1, i));
    if (j === this.index) return;
    this.showAndSend(j);
  }

  private showAndSend(i: number): void {
    this.show(i);
    this.sendEpoch();
  }

  private show(i: number): void {
    const f = this.frames as Frames;
    const t0 = performance.now();
    paintImage(this.weight, this.wImg, i);
    paintImage(this.act, this.aImg, i);
    const epoch = f.epochs[i];
    if (f.hist) {
      const row = indexOfEpoch(f.hist.epochs, epoch);
      this.histMark.style.top = `calc(${((row + 0.5) / f.hist.epochs.length) * 100}% - 1px)`;
    }
    const xmax = f.steps.length ? f.steps[f.steps.length - 1] : 1;
    this.curveMark.style.left = `calc(${(Math.max(0, f.steps[i] - 1) / Math.max(1, xmax)) * 100}% - 1px)`;
    this.moveMarkers(i);
    this.slider.value = String(i);
    this.label.textContent = `${pointName(f, i)} (${i + 1}/${f.epochs.length})`;
    this.index = i;
    const ms = performance.now() - t0;
    this.times.add(ms);
    this.root.dataset.epoch = String(epoch);
    this.root.dataset.frameMs = ms.toFixed(3);
    this.scheduleReport();
  }

  /** The new epoch to the kernel: at most every 100 ms while dragging, and the last one always. */
  private sendEpoch(): void {
    const send = () => {
      this.sendTimer = undefined;
      this.lastSent = performance.now();
      const f = this.frames;
      if (!f || this.index < 0) return;
      this.model.set("epoch", f.epochs[this.index]);
      this.model.save_changes();
    };
    if (this.sendTimer !== undefined) return;
    const wait = Math.max(0, 100 - (performance.now() - this.lastSent));
    this.sendTimer = setTimeout(send, wait);
  }

  /** Repaint times go to the kernel once scrubbing pauses (one message, not one a frame). */
  private scheduleReport(): void {
    if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      this.model.set("_frame_ms", this.times.times.slice(-200));
      this.model.save_changes();
    }, 1000);
  }

  toggle(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.play.textContent = "▶";
      return;
    }
    const f = this.frames;
    if (!f || f.epochs.length < 2) return;
    this.setFollow(false);
    if (this.index >= f.epochs.length - 1) this.scrubTo(0);
    this.play.textContent = "❚❚";
    this.timer = setInterval(() => {
      const g = this.frames;
      if (!g || this.index >= g.epochs.length - 1) {
        this.toggle();
        return;
      }
      this.scrubTo(this.index + 1);
    }, 1000 / Number(this.speed.value));
  }

  dispose(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.sendTimer !== undefined) clearTimeout(this.sendTimer);
    if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
    if (this.markerTimer !== undefined) clearTimeout(this.markerTimer);
  }
}
