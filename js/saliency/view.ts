// The saliency view (ls.saliency): the input and one attribution panel per method (image inputs),
// or tokens coloured by attribution (token and feature inputs); the top-k classes, a click on
// which re-targets (the kernel recomputes, sending progress); attention as a layers x heads grid
// of thumbnails, the clicked one opening in the zoomable heatmap. Everything shown at the
// computed targets is in the synced state, so an exported page draws it with no kernel.

import type { AnyModel } from "@anywidget/types";
import { el, ensureStyle } from "../core/dom";
import { shortNumber } from "../core/format";
import { RequestError, type Requester, Superseded } from "../core/request";
import { BASE_CSS } from "../core/theme";
import { decodeArray, formatExact, type Payload } from "../core/wire";
import { paintCodes } from "../tensor/featuremaps";
import { dequantize, type Quant } from "../tensor/quant";
import { EXTRA_KINDS, type ExtraKind, KIND_CSS, type KindSample, renderKind } from "./kinds";
import { chunks, composite, lightText, type SignMode, tokenBackground } from "./paint";

type Model = AnyModel<Record<string, unknown>>;

interface MapPayload {
  codes: Payload;
  quant: Quant;
  max_abs: number;
}

interface Sample {
  target: number | number[] | null;
  image?: Payload;
  ids?: Payload;
  maps: Record<string, MapPayload>;
  topk?: { probs: number[]; indices: number[] };
}

interface Info {
  kind: "image" | "tokens" | "features" | ExtraKind;
  n: number;
  shape: number[];
  methods: string[];
  classes: number | null;
  /** What the last row is when show_input added one past the inputs (e.g. "dataset sample 7"). */
  extra?: string;
}

interface Attention {
  layers: string[];
  heads: number;
  shape: [number, number];
  thumb: [number, number];
  codes: Payload;
  batch: number;
}

const PANEL_PX = 224;
const TOKEN_CHUNK = 256;

const CSS = `
.ls-saliency [hidden] { display: none !important; }
.ls-saliency .ls-sal-bar { display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: center; margin: 0 0 6px 0; }
.ls-saliency .ls-sal-bar label { display: inline-flex; gap: 4px; align-items: center; }
.ls-saliency .ls-sal-bar input[type=number] { width: 4em; }
.ls-saliency .ls-panels { display: flex; flex-wrap: wrap; gap: 10px; }
.ls-saliency .ls-panel { display: flex; flex-direction: column; gap: 2px; }
.ls-saliency .ls-panel canvas { width: ${PANEL_PX}px; image-rendering: pixelated; display: block;
  border: 1px solid var(--jp-border-color2, #e0e0e0); }
.ls-saliency .ls-caption { font-weight: 600; }
.ls-saliency .ls-topk { display: flex; flex-direction: column; gap: 2px; margin: 8px 0; max-width: 420px; }
.ls-saliency .ls-topk button { display: grid; grid-template-columns: 1fr 120px 4em; gap: 8px; align-items: center;
  text-align: left; border: 1px solid transparent; border-radius: 3px; padding: 2px 6px; cursor: pointer;
  background: none; color: inherit; font: inherit; }
.ls-saliency .ls-topk button:hover { background: var(--jp-layout-color2, #eee); }
.ls-saliency .ls-topk button.ls-current { border-color: var(--jp-brand-color1, #1976d2); font-weight: 600; }
.ls-saliency .ls-topk .ls-bar { height: 8px; background: var(--jp-brand-color1, #1976d2); border-radius: 2px; }
.ls-saliency .ls-topk .ls-label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ls-saliency progress.ls-progress { width: 160px; }
.ls-saliency .ls-tokens { max-height: 180px; overflow-y: auto; padding: 2px;
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; margin: 2px 0 8px 0; }
.ls-saliency .ls-tokchunk { content-visibility: auto; contain-intrinsic-size: auto 120px; }
.ls-saliency .ls-tok { display: inline-block; white-space: pre; line-height: 1.4; padding: 1px 2px; margin: 0 1px; border-radius: 2px; cursor: default;
  font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 12px); }
.ls-saliency .ls-tok:hover { outline: 1px solid var(--jp-ui-font-color1, #000); }
.ls-saliency .ls-attn { display: grid; gap: 3px; align-items: center; justify-content: start; margin: 4px 0; overflow-x: auto; }
.ls-saliency .ls-attn canvas { width: 52px; height: 52px; image-rendering: pixelated; cursor: pointer; display: block;
  border: 1px solid var(--jp-border-color2, #e0e0e0); }
.ls-saliency .ls-attn canvas.ls-selected { outline: 2px solid var(--jp-brand-color1, #1976d2); }
.ls-saliency .ls-attn .ls-attn-label { font-size: 11px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 160px; }
.ls-saliency .ls-attn-open > .ls-view { border: none; padding: 0; }
.ls-saliency .ls-readout { min-height: 1.4em; }
`;

function decodeMap(m: MapPayload): Float32Array {
  return dequantize(decodeArray(m.codes).data as Uint8Array, m.quant);
}

export class SaliencyUI {
  readonly root = el("div", "ls-view ls-saliency");
  private readonly bar = el("div", "ls-sal-bar");
  private readonly batchIn = el("input", "ls-batch");
  private readonly batchLabel = el("label", "", "sample ");
  private readonly extraNote = el("span", "ls-muted ls-extra-row");
  private readonly opacityIn = el("input", "ls-opacity");
  private readonly opacityLabel = el("label", "", "opacity ");
  private readonly signSel = el("select", "ls-sign");
  private readonly progress = el("progress", "ls-progress");
  private readonly status = el("span", "ls-status ls-muted");
  private readonly busyRow = el("div", "ls-row ls-busy");
  private readonly errorEl = el("div", "ls-error");
  private readonly panels = el("div", "ls-panels");
  private readonly readout = el("div", "ls-readout ls-mono");
  private readonly topk = el("div", "ls-topk");
  private readonly tokensEl = el("div", "ls-token-views");
  private readonly kindsEl = el("div", "ls-kind-views");
  private readonly attnTitle = el("div", "ls-caption", "attention (layers x heads): click to open");
  private readonly attn = el("div", "ls-attn");
  private readonly attnOpen = el("div", "ls-attn-open");
  private readonly attnSaved = el("div", "ls-attn-saved-wrap");
  private painted = 0;
  private panelKey = "";
  private offline = false;
  private busy = 0;
  private lastAttention: unknown;
  private progressToken = "";
  private readonly onCustom = (msg: unknown) => this.receive(msg);
  private readonly events =
    "change:_samples change:_info change:batch change:opacity change:sign change:target change:labels change:tokens change:_error change:frame";

  constructor(
    private readonly model: Model,
    private readonly requester: Requester,
    private readonly mountHeatmap: () => HTMLElement,
  ) {
    ensureStyle("ls-base-css", BASE_CSS);
    ensureStyle("ls-saliency-css", CSS);
    ensureStyle("ls-saliency-kinds-css", KIND_CSS);
    this.batchIn.type = "number";
    this.batchIn.min = "0";
    // Enter applies at once (and stays in the box: the notebook must not take the key as a
    // command); leaving the box applies too.
    this.batchIn.addEventListener("change", () => this.applyBatch());
    this.batchIn.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Enter") {
        e.preventDefault();
        this.applyBatch();
      }
    });
    this.batchLabel.append(this.batchIn, this.extraNote);
    this.opacityIn.type = "range";
    this.opacityIn.min = "0";
    this.opacityIn.max = "1";
    this.opacityIn.step = "0.01";
    this.opacityIn.addEventListener("input", () => {
      this.model.set("opacity", Number(this.opacityIn.value));
      if (EXTRA_KINDS.includes(this.info()?.kind ?? "")) this.render();
      else this.paintPanels();
    });
    this.opacityIn.addEventListener("change", () =>
      this.set("opacity", Number(this.opacityIn.value)),
    );
    this.opacityLabel.append(this.opacityIn);
    for (const [v, t] of [
      ["signed", "signed (diverging)"],
      ["absolute", "absolute (sequential)"],
    ]) {
      const o = el("option", "", t);
      o.value = v;
      this.signSel.append(o);
    }
    this.signSel.addEventListener("change", () => this.set("sign", this.signSel.value));
    const signLabel = el("label", "", "colours ");
    signLabel.append(this.signSel);
    this.progress.max = 1;
    this.progress.hidden = true;
    this.bar.append(this.batchLabel, this.opacityLabel, signLabel);
    // Progress and errors sit by the top-k list, where the click that starts a re-target is.
    this.busyRow.append(this.progress, this.status);
    this.errorEl.hidden = true;
    this.attnOpen.hidden = true;
    this.root.append(
      this.bar,
      this.panels,
      this.tokensEl,
      this.kindsEl,
      this.readout,
      this.busyRow,
      this.errorEl,
      this.topk,
      this.attnTitle,
      this.attn,
      this.attnOpen,
      this.attnSaved,
    );
    this.attnSaved.hidden = true;
    this.attn.addEventListener("click", (e) => {
      const t = e.target as HTMLElement;
      if (t.tagName !== "CANVAS") return;
      const open = [Number(t.dataset.layer), Number(t.dataset.head)];
      if (this.offline) {
        this.showSaved(t as HTMLCanvasElement);
        this.markSelected(open);
        return;
      }
      this.set("attention_open", open);
      this.markSelected(open);
    });
    this.topk.addEventListener("click", (e) => {
      const b = (e.target as HTMLElement).closest("button");
      if (b?.dataset.cls !== undefined) this.retarget(Number(b.dataset.cls));
    });
    this.tokensEl.addEventListener("mouseover", (e) => this.hoverToken(e.target as HTMLElement));
    model.on("msg:custom", this.onCustom);
    model.on(this.events, this.render);
    model.on("change:_attention change:attention_open", this.renderAttention);
    model.on("change:_meta", this.showOpen);
    this.render();
    this.renderAttention();
    this.showOpen();
  }

  dispose(): void {
    this.model.off("msg:custom", this.onCustom);
    this.model.off(this.events, this.render);
    this.model.off("change:_attention change:attention_open", this.renderAttention);
    this.model.off("change:_meta", this.showOpen);
  }

  setOffline(): void {
    this.offline = true;
    this.status.textContent = "no kernel: showing the saved targets";
  }

  setOnline(): void {
    this.offline = false;
    this.status.textContent = "";
  }

  private set(name: string, value: unknown): void {
    this.model.set(name, value);
    this.model.save_changes();
  }

  /**
   * The box's number as the sample, if it is one: out of range (or not a whole number) is
   * refused with a message, and the box goes back to the sample drawn, so the box, the drawing
   * and the trait always agree.
   */
  private applyBatch(): void {
    const n = this.info()?.n ?? 1;
    const text = this.batchIn.value.trim();
    const b = Number(text);
    if (text === "" || !Number.isInteger(b) || b < 0 || b >= n) {
      this.batchIn.value = String(this.batch());
      this.showError(`sample ${text || "(empty)"} is outside 0..${n - 1}`);
      return;
    }
    this.showError("");
    if (b !== this.batch()) this.set("batch", b);
  }

  private showError(message: string): void {
    this.errorEl.textContent = message;
    this.errorEl.hidden = !message;
  }

  private info(): Info | undefined {
    const i = this.model.get("_info") as Info | undefined;
    return i?.kind ? i : undefined;
  }

  private batch(): number {
    const n = this.info()?.n ?? 1;
    return Math.max(0, Math.min(n - 1, Number(this.model.get("batch") ?? 0)));
  }

  private sample(): Sample | undefined {
    const samples = (this.model.get("_samples") as Sample[]) ?? [];
    return samples[this.batch()];
  }

  private readonly render = () => {
    const info = this.info();
    this.showError((this.model.get("_error") as string) ?? "");
    if (!info) return;
    const b = this.batch();
    this.batchLabel.hidden = info.n <= 1;
    this.batchIn.max = String(info.n - 1);
    this.batchIn.value = String(b);
    // the row past the inputs is not one of them: say what it is
    const extra = info.extra && b === info.n - 1 ? info.extra : "";
    this.extraNote.textContent = extra ? ` = ${extra}` : "";
    this.root.dataset.extra = extra;
    this.opacityLabel.hidden = !["image", "signal", "video"].includes(info.kind);
    this.opacityIn.value = String(this.model.get("opacity") ?? 0.6);
    this.signSel.value = String(this.model.get("sign") ?? "signed");
    const s = this.sample();
    this.root.dataset.batch = String(b);
    this.root.dataset.target = JSON.stringify(s?.target ?? null);
    this.renderTopk(s);
    if (EXTRA_KINDS.includes(info.kind)) {
      this.tokensEl.replaceChildren();
      this.panels.replaceChildren();
      this.panelKey = "";
      this.renderExtraKind(info, s);
    } else if (info.kind === "image") {
      this.tokensEl.replaceChildren();
      this.kindsEl.replaceChildren();
      this.paintPanels();
    } else {
      this.panels.replaceChildren();
      this.kindsEl.replaceChildren();
      this.panelKey = "";
      this.renderTokens(info, s);
    }
    this.painted += 1;
    this.root.dataset.painted = String(this.painted);
  };

  /** Sequences, signals and video (js/saliency/kinds.ts). */
  private renderExtraKind(info: Info, s: Sample | undefined): void {
    renderKind(
      this.kindsEl,
      {
        kind: info.kind as ExtraKind,
        shape: info.shape,
        methods: info.methods,
        mode: (this.model.get("sign") as SignMode) ?? "signed",
        opacity: Number(this.model.get("opacity") ?? 0.6),
        frame: Number(this.model.get("frame") ?? 0),
        steps: this.model.get("tokens") ? this.tokenTexts(info, s) : undefined,
        setFrame: (t) => this.set("frame", t),
        readout: (text) => {
          this.readout.textContent = text;
        },
      },
      s as unknown as KindSample | undefined,
    );
  }

  private label(cls: number): string {
    const labels = this.model.get("labels") as string[] | null;
    return labels && cls < labels.length ? labels[cls] : `class ${cls}`;
  }

  private renderTopk(s: Sample | undefined): void {
    this.topk.replaceChildren();
    if (!s?.topk) return;
    const target = s.target;
    const head = el("div", "ls-muted", "top classes (click to explain another):");
    this.topk.append(head);
    const listed = new Set<number>();
    s.topk.indices.forEach((cls, i) => {
      listed.add(cls);
      this.topk.append(this.topkButton(cls, s.topk?.probs[i] ?? null, cls === target));
    });
    if (typeof target === "number" && !listed.has(target)) {
      this.topk.append(this.topkButton(target, null, true));
    }
  }

  private topkButton(cls: number, p: number | null, current: boolean): HTMLButtonElement {
    const b = el("button", current ? "ls-current" : "");
    b.type = "button";
    b.dataset.cls = String(cls);
    b.title = `explain ${this.label(cls)}`;
    const bar = el("div", "ls-bar");
    bar.style.width = p === null ? "0" : `${Math.max(1, Math.round(p * 100))}%`;
    const barWrap = el("div");
    barWrap.append(bar);
    b.append(
      el("span", "ls-label", this.label(cls)),
      barWrap,
      el("span", "ls-mono", p === null ? "" : `${(p * 100).toFixed(1)}%`),
    );
    return b;
  }

  private retarget(cls: number): void {
    if (this.offline) {
      this.showError("no kernel: this saved view shows the targets it was computed for");
      return;
    }
    this.busy += 1;
    const token = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    this.progressToken = token;
    this.progress.hidden = false;
    this.progress.value = 0;
    this.status.textContent = `computing ${this.label(cls)}…`;
    this.showError("");
    this.requester
      .request(
        "retarget",
        { batch: this.batch(), target: cls, _id: token },
        { channel: "retarget" },
      )
      .then(() => {
        this.status.textContent = "";
      })
      .catch((e: unknown) => {
        if (e instanceof Superseded) return;
        this.status.textContent = "";
        const msg = e instanceof RequestError ? `${e.type}: ${e.message}` : String(e);
        this.showError(`could not re-target: ${msg}`);
      })
      .finally(() => {
        this.busy -= 1;
        if (this.busy === 0) this.progress.hidden = true;
      });
  }

  private receive(msg: unknown): void {
    const m = msg as Record<string, unknown> | null;
    if (m?.ls_progress !== 1 || m.id !== this.progressToken) return;
    this.progress.value = Number(m.fraction) || 0;
    this.status.textContent = `${String(m.method)} ${Math.round((Number(m.fraction) || 0) * 100)}%`;
  }

  // ---- image panels ----------------------------------------------------------------------

  private paintPanels(): void {
    const info = this.info();
    const s = this.sample();
    if (info?.kind !== "image" || !s?.image) return;
    const img = decodeArray(s.image);
    const [h, w, c] = img.shape;
    const pixels = img.data as Uint8Array;
    const mode = (this.model.get("sign") as SignMode) ?? "signed";
    const opacity = Number(this.model.get("opacity") ?? 0.6);
    const want = ["input", ...info.methods];
    if (this.panelKey !== want.join("\n")) {
      this.panelKey = want.join("\n");
      this.panels.replaceChildren(
        ...want.map((name) => {
          const p = el("div", "ls-panel");
          p.dataset.method = name;
          const cv = el("canvas");
          cv.addEventListener("mousemove", (e) => this.hoverPixel(name, cv, e));
          cv.addEventListener("mouseleave", () => {
            this.readout.textContent = "";
          });
          p.append(el("div", "ls-caption", name), cv, el("div", "ls-muted ls-scale"));
          return p;
        }),
      );
    }
    want.forEach((name, i) => {
      const p = this.panels.children[i] as HTMLElement;
      const cv = p.querySelector("canvas") as HTMLCanvasElement;
      if (cv.width !== w || cv.height !== h) {
        cv.width = w;
        cv.height = h;
      }
      cv.style.height = `${Math.round((PANEL_PX * h) / w)}px`;
      const ctx = cv.getContext("2d");
      if (!ctx) return;
      const out = ctx.createImageData(w, h);
      const scaleEl = p.querySelector(".ls-scale") as HTMLElement;
      if (name === "input") {
        for (let k = 0, j = 0; k < w * h; k++, j += 4) {
          out.data[j] = pixels[k * c];
          out.data[j + 1] = pixels[k * c + (c === 3 ? 1 : 0)];
          out.data[j + 2] = pixels[k * c + (c === 3 ? 2 : 0)];
          out.data[j + 3] = 255;
        }
        scaleEl.textContent = `${info.shape.slice(1).join(" x ")}`;
      } else {
        const m = s.maps[name];
        if (!m) return;
        composite(pixels, c, decodeMap(m), m.max_abs, mode, opacity, out.data);
        scaleEl.textContent =
          mode === "signed"
            ? `blue < 0 < red, |max| ${shortNumber(m.max_abs)}`
            : `|attribution| 0 .. ${shortNumber(m.max_abs)}`;
      }
      ctx.putImageData(out, 0, 0);
    });
    this.root.dataset.opacity = String(opacity);
  }

  private hoverPixel(name: string, cv: HTMLCanvasElement, e: MouseEvent): void {
    const r = cv.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * cv.width);
    const y = Math.floor(((e.clientY - r.top) / r.height) * cv.height);
    const s = this.sample();
    const info = this.info();
    if (!s || !info || x < 0 || y < 0 || x >= cv.width || y >= cv.height) return;
    const [H, W] = info.shape.slice(2);
    const where = `[${Math.floor((y * H) / cv.height)}, ${Math.floor((x * W) / cv.width)}]`;
    if (name === "input") {
      this.readout.textContent = `pixel ${where}`;
      return;
    }
    const m = s.maps[name];
    if (!m) return;
    const v = decodeMap(m)[y * cv.width + x];
    this.readout.textContent = `${name} ${where} ≈ ${formatExact(v, "float32")}`;
  }

  // ---- tokens ----------------------------------------------------------------------------

  private tokenTexts(info: Info, s: Sample | undefined): string[] {
    const length = info.shape[1];
    const given = this.model.get("tokens") as (string | string[])[] | null;
    if (given?.length) {
      const row = Array.isArray(given[0]) ? (given[this.batch()] as string[]) : (given as string[]);
      if (row && row.length === length) return row;
    }
    if (info.kind === "tokens" && s?.ids) {
      const ids = decodeArray(s.ids).data;
      return Array.from({ length }, (_, i) => `#${String(ids[i])}`);
    }
    return Array.from({ length }, (_, i) => `x${i}`);
  }

  private renderTokens(info: Info, s: Sample | undefined): void {
    const texts = this.tokenTexts(info, s);
    const mode = (this.model.get("sign") as SignMode) ?? "signed";
    const views: HTMLElement[] = [];
    for (const name of info.methods) {
      const m = s?.maps[name];
      const box = el("div", "ls-tokens");
      box.dataset.method = name;
      if (!m) continue;
      const values = decodeMap(m);
      const frag = document.createDocumentFragment();
      for (const [a, b] of chunks(texts.length, TOKEN_CHUNK)) {
        const chunk = el("div", "ls-tokchunk");
        for (let i = a; i < b; i++) {
          const span = el("span", "ls-tok", texts[i]);
          span.dataset.i = String(i);
          span.style.background = tokenBackground(values[i], m.max_abs, mode);
          // Light text on the dark ends of the map (both themes), the theme's text elsewhere.
          if (lightText(values[i], m.max_abs, mode)) span.style.color = "#fff";
          chunk.append(span);
        }
        frag.append(chunk);
      }
      box.append(frag);
      const cap = el(
        "div",
        "ls-caption",
        `${name}  (${mode === "signed" ? "blue < 0 < red" : "|attribution|"}, |max| ${shortNumber(m.max_abs)})`,
      );
      views.push(cap, box);
    }
    this.tokensEl.replaceChildren(...views);
  }

  private hoverToken(t: HTMLElement): void {
    if (!t.classList.contains("ls-tok")) return;
    const box = t.closest(".ls-tokens") as HTMLElement | null;
    const name = box?.dataset.method;
    const s = this.sample();
    if (!name || !s?.maps[name]) return;
    const i = Number(t.dataset.i);
    const v = decodeMap(s.maps[name])[i];
    this.readout.textContent = `${name} [${i}] ${JSON.stringify(t.textContent)} ≈ ${formatExact(v, "float32")}`;
  }

  // ---- attention ------------------------------------------------------------------------

  private readonly renderAttention = () => {
    const a = this.model.get("_attention") as Attention | undefined;
    const has = Boolean(a?.layers?.length);
    this.attnTitle.hidden = !has;
    this.attn.hidden = !has;
    if (!a || !has) return;
    this.attnTitle.textContent = `attention of sample ${a.batch} (layers x heads, ${a.shape[0]} x ${a.shape[1]}): click to open`;
    if (a !== this.lastAttention) {
      this.lastAttention = a;
      const codes = decodeArray(a.codes).data as Uint8Array;
      const [th, tw] = a.thumb;
      this.attn.style.gridTemplateColumns = `auto repeat(${a.heads}, 54px)`;
      const cells: HTMLElement[] = [el("div")];
      for (let h = 0; h < a.heads; h++) cells.push(el("div", "ls-muted", `head ${h}`));
      a.layers.forEach((path, l) => {
        const lab = el("div", "ls-attn-label ls-mono", path);
        lab.title = path;
        cells.push(lab);
        for (let h = 0; h < a.heads; h++) {
          const cv = el("canvas");
          cv.width = tw;
          cv.height = th;
          cv.dataset.layer = String(l);
          cv.dataset.head = String(h);
          cv.title = `${path} head ${h} (${a.shape[0]} x ${a.shape[1]})`;
          const ctx = cv.getContext("2d");
          if (ctx) {
            const img = ctx.createImageData(tw, th);
            const off = (l * a.heads + h) * th * tw;
            paintCodes(codes.subarray(off, off + th * tw), "viridis", img.data);
            ctx.putImageData(img, 0, 0);
          }
          cells.push(cv);
        }
      });
      this.attn.replaceChildren(...cells);
    }
    this.markSelected((this.model.get("attention_open") as number[]) ?? []);
  };

  /** No kernel: the saved thumbnail, enlarged, stands in for the zoomable matrix. */
  private showSaved(thumb: HTMLCanvasElement): void {
    const big = el("canvas", "ls-attn-saved");
    big.width = thumb.width;
    big.height = thumb.height;
    big.getContext("2d")?.drawImage(thumb, 0, 0);
    big.style.width = "320px";
    big.style.imageRendering = "pixelated";
    const note = el(
      "div",
      "ls-muted",
      `${thumb.title}: the saved ${thumb.height} x ${thumb.width} thumbnail (no kernel for the full matrix)`,
    );
    this.attnSaved.replaceChildren(note, big);
    this.attnSaved.hidden = false;
  }

  private markSelected(open: number[]): void {
    for (const cv of this.attn.querySelectorAll("canvas")) {
      const on =
        open.length === 2 &&
        Number(cv.dataset.layer) === open[0] &&
        Number(cv.dataset.head) === open[1];
      cv.classList.toggle("ls-selected", on);
    }
  }

  private readonly showOpen = () => {
    const meta = this.model.get("_meta") as { kind?: string } | undefined;
    // The heatmap is mounted once a matrix is open (it cannot draw a view without data).
    if (meta?.kind && !this.attnOpen.firstChild) this.attnOpen.append(this.mountHeatmap());
    this.attnOpen.hidden = !meta?.kind;
  };
}
