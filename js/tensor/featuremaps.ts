// A grid of channel feature maps (thumbnails): only the channels scrolled into view are asked
// from the kernel, at thumbnail resolution; baked thumbnails (the first channels) show offline.

import { LUT_SIZE, lut, NAN_RGB, NEGINF_RGB, POSINF_RGB, type Rgb } from "../core/colormap";
import { el } from "../core/dom";
import { type Requester, Superseded } from "../core/request";
import { decodeArray, type Payload } from "../core/wire";
import { NAN, NEGINF, POSINF } from "./quant";
import { LEVELS } from "./quantlevels";

export interface ThumbSet {
  layer: string;
  batch?: number;
  start: number;
  count: number;
  thumb: [number, number];
  map: string;
  codes: Uint8Array;
}

export interface ActInfo {
  layer: string;
  shape: number[];
  kind: string;
  n: number;
  channels?: number;
  thumb?: [number, number];
}

const CELL = 60; // CSS px of a grid cell (thumbnail + label)

export const FMAP_CSS = `
.ls-fmap-bar { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; margin-bottom: 4px; }
.ls-fmap-bar label { display: inline-flex; gap: 4px; align-items: center; }
.ls-fmap-grid { max-height: 260px; overflow-y: auto; border: 1px solid var(--jp-border-color2, #e0e0e0);
  border-radius: 3px; margin-bottom: 6px; }
.ls-fmap-inner { position: relative; }
.ls-fmap { position: absolute; width: ${CELL - 6}px; text-align: center; cursor: pointer; font-size: 10px;
  font-family: var(--jp-code-font-family, monospace); color: var(--jp-ui-font-color2, rgba(0,0,0,0.54)); }
.ls-fmap canvas { width: ${CELL - 10}px; height: ${CELL - 18}px; image-rendering: pixelated; display: block; margin: 0 auto;
  border: 1px solid var(--jp-border-color2, #e0e0e0); background: var(--jp-layout-color2, #eee); }
.ls-fmap.ls-selected canvas { outline: 2px solid var(--jp-brand-color1, #1976d2); }
`;

/** RGBA of thumbnail codes with a named map (code k -> LUT entry k * (LUT_SIZE-1) / LEVELS). */
export function paintCodes(codes: Uint8Array, map: string, out: Uint8ClampedArray): void {
  const table = lut(map);
  const bad: Record<number, Rgb> = { [NAN]: NAN_RGB, [POSINF]: POSINF_RGB, [NEGINF]: NEGINF_RGB };
  for (let i = 0, j = 0; i < codes.length; i++, j += 4) {
    const c = codes[i];
    const b = bad[c];
    if (b) {
      out[j] = b[0];
      out[j + 1] = b[1];
      out[j + 2] = b[2];
    } else {
      const k = Math.round((Math.min(c, LEVELS) * (LUT_SIZE - 1)) / LEVELS);
      out[j] = table[k * 3];
      out[j + 1] = table[k * 3 + 1];
      out[j + 2] = table[k * 3 + 2];
    }
    out[j + 3] = 255;
  }
}

export class FeatureGrid {
  readonly root = el("div", "ls-fmap-grid");
  private readonly inner = el("div", "ls-fmap-inner");
  private info: ActInfo | undefined;
  private batch = 0;
  private selected = 0;
  private cells: HTMLElement[] = [];
  private have = new Set<number>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  offline = false;

  constructor(
    private readonly requester: Requester | undefined,
    private readonly onPick: (channel: number) => void,
  ) {
    this.root.append(this.inner);
    this.root.addEventListener("scroll", () => this.schedule());
  }

  update(
    info: ActInfo | undefined,
    batch: number,
    channel: number,
    baked: ThumbSet | undefined,
    stale: boolean,
  ): void {
    const changed = stale || !this.info || info?.layer !== this.info.layer || batch !== this.batch;
    this.info = info;
    this.batch = batch;
    this.root.hidden = info?.kind !== "conv";
    if (info?.kind !== "conv") return;
    const n = info.channels ?? 0;
    if (changed || this.cells.length !== n) {
      this.have.clear();
      this.layout(n);
      if (baked && baked.layer === info.layer && (baked.batch ?? 0) === batch) this.fill(baked);
    }
    this.cells[this.selected]?.classList.remove("ls-selected");
    this.selected = channel;
    this.cells[channel]?.classList.add("ls-selected");
    this.schedule();
  }

  private columns(): number {
    return Math.max(1, Math.floor((this.root.clientWidth || 600) / CELL));
  }

  private layout(n: number): void {
    const cols = this.columns();
    this.inner.replaceChildren();
    this.cells = [];
    this.inner.style.height = `${Math.ceil(n / cols) * CELL}px`;
    for (let c = 0; c < n; c++) {
      const cell = el("div", "ls-fmap");
      cell.dataset.channel = String(c);
      cell.style.left = `${(c % cols) * CELL + 3}px`;
      cell.style.top = `${Math.floor(c / cols) * CELL + 3}px`;
      const cv = el("canvas");
      cell.append(cv, el("div", "", String(c)));
      cell.addEventListener("click", () => this.onPick(c));
      this.inner.append(cell);
      this.cells.push(cell);
    }
  }

  /** Channels whose cells are in view (plus one row either side). */
  visibleRange(): [number, number] {
    const cols = this.columns();
    const n = this.cells.length;
    const top = Math.max(0, Math.floor(this.root.scrollTop / CELL) - 1);
    const rows = Math.ceil((this.root.clientHeight || 260) / CELL) + 2;
    return [Math.min(n, top * cols), Math.min(n, (top + rows) * cols)];
  }

  fill(t: ThumbSet): void {
    const [h, w] = t.thumb;
    for (let k = 0; k < t.count; k++) {
      const cell = this.cells[t.start + k];
      if (!cell) continue;
      const cv = cell.querySelector("canvas") as HTMLCanvasElement;
      cv.width = w;
      cv.height = h;
      const ctx = cv.getContext("2d");
      if (!ctx) continue;
      const img = ctx.createImageData(w, h);
      paintCodes(t.codes.subarray(k * h * w, (k + 1) * h * w), t.map, img.data);
      ctx.putImageData(img, 0, 0);
      this.have.add(t.start + k);
      cell.dataset.loaded = "1";
    }
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 30);
  }

  private load(): void {
    const info = this.info;
    if (info?.kind !== "conv" || !this.requester || this.offline) return;
    const [a, b] = this.visibleRange();
    let start = a;
    while (start < b && this.have.has(start)) start++;
    let end = b;
    while (end > start && this.have.has(end - 1)) end--;
    if (end <= start) return;
    const side = Math.round((CELL - 10) * (window.devicePixelRatio || 1));
    const layer = info.layer;
    const batch = this.batch;
    this.requester
      .request("thumbs", { start, count: end - start, side, batch }, { channel: "thumbs" })
      .then((reply) => {
        if (this.info?.layer !== layer || this.batch !== batch) return;
        const c = reply.content as Record<string, unknown>;
        const d = decodeArray({ ...(c.data as Payload), buffer: reply.buffers[0] });
        this.fill({
          layer,
          start: Number(c.start),
          count: Number(c.count),
          thumb: c.thumb as [number, number],
          map: String(c.map),
          codes: d.data as Uint8Array,
        });
        this.root.dataset.requested = `${c.start},${Number(c.start) + Number(c.count)}`;
        this.root.dataset.bytes = String(reply.buffers[0]?.byteLength ?? 0);
        this.schedule();
      })
      .catch((err: Error) => {
        if (err instanceof Superseded) return;
        if (err.name === "Timeout") this.offline = true;
      });
  }
}
