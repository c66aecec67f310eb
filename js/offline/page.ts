// The widget manager of an exported page whose widgets are all anywidgets (every layerscope
// view): it reads the page's saved widget state, imports each view's `_esm` bundle from the
// state and calls its `render`. It stands in for require.js + the html-manager's embed-amd.js
// (3.6 MB, every ipywidgets control) + anywidget's AMD module, which such a page never uses.
// Pages with other widgets (bqplot, ipywidgets controls) keep the full stack; see export.py.

type Callback = (...args: unknown[]) => void;

interface SavedModel {
  model_name: string;
  model_module: string;
  state: Record<string, unknown>;
  buffers?: { path: (string | number)[]; data: string; encoding: string }[];
}

const STATE_TYPE = "application/vnd.jupyter.widget-state+json";
// The same state gzip-compressed and base64-encoded (layerscope's exporter writes this one).
const PACKED_STATE_TYPE = "application/vnd.layerscope.widget-state+gzip";
const VIEW_TYPE = "application/vnd.jupyter.widget-view+json";

function decodeBase64(data: string): DataView {
  const bin = atob(data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new DataView(bytes.buffer);
}

/** Binary buffers back into the state at their paths, as DataViews (what the kernel sends). */
export function putBuffers(state: Record<string, unknown>, buffers: SavedModel["buffers"]): void {
  for (const b of buffers ?? []) {
    if (b.encoding !== "base64") throw new Error(`unknown buffer encoding ${b.encoding}`);
    let obj = state as Record<string | number, unknown> | undefined;
    for (const key of b.path.slice(0, -1)) obj = obj?.[key] as Record<string | number, unknown>;
    // A buffer whose place is gone from the state (a stale one a notebook kept): nothing uses it.
    if (obj && typeof obj === "object") obj[b.path[b.path.length - 1]] = decodeBase64(b.data);
  }
}

/** The part of anywidget's model API the views use: get/set/on/off/save_changes/send. */
export class PageModel {
  private events = new Map<string, Set<Callback>>();
  constructor(
    readonly id: string,
    private state: Record<string, unknown>,
    readonly widget_manager: PageManager,
  ) {}
  get(name: string): unknown {
    return this.state[name];
  }
  set(name: string, value: unknown): void {
    if (Object.is(this.state[name], value)) return;
    this.state[name] = value;
    this.emit(`change:${name}`, this, value);
    this.emit("change", this);
  }
  save_changes(): void {
    // No kernel to sync with: the change already lives in this page's model.
  }
  send(): void {
    // No kernel: views check window.__layerscopeOffline before they ask.
  }
  on(name: string, cb: Callback): void {
    for (const n of name.split(" ")) {
      const set = this.events.get(n) ?? new Set<Callback>();
      set.add(cb);
      this.events.set(n, set);
    }
  }
  off(name?: string | null, cb?: Callback | null): void {
    for (const [n, set] of this.events) {
      if (name && !name.split(" ").includes(n)) continue;
      if (cb) set.delete(cb);
      else set.clear();
    }
  }
  private emit(name: string, ...args: unknown[]): void {
    for (const cb of [...(this.events.get(name) ?? [])]) cb(...args);
  }
}

export class PageManager {
  readonly models = new Map<string, PageModel>();
  constructor(saved: Record<string, SavedModel>) {
    for (const [id, entry] of Object.entries(saved)) {
      const state = { ...entry.state };
      putBuffers(state, entry.buffers);
      this.models.set(id, new PageModel(id, state, this));
    }
  }
  get_model(id: string): Promise<PageModel> {
    const m = this.models.get(id);
    return m ? Promise.resolve(m) : Promise.reject(new Error(`no model ${id} in this page`));
  }
}

interface WidgetModule {
  render?: (props: { model: PageModel; el: HTMLElement }) => unknown;
  initialize?: (props: { model: PageModel }) => unknown;
}

async function loadEsm(code: string): Promise<WidgetModule> {
  // A blob: URL is local: nothing leaves the page.
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  try {
    const mod = (await import(/* @vite-ignore */ url)) as { default?: unknown };
    let def: unknown = mod.default ?? mod;
    if (typeof def === "function") def = await (def as () => unknown)();
    return def as WidgetModule;
  } finally {
    URL.revokeObjectURL(url);
  }
}

function showError(after: Element, err: unknown): void {
  const box = document.createElement("pre");
  box.className = "ls-page-error";
  box.textContent = `This view could not be shown: ${err instanceof Error ? err.message : String(err)}`;
  after.after(box);
}

/** The page's saved state: the packed tag inflated, else the plain JSON tag; null if none. */
export async function readState(doc: Document): Promise<string | null> {
  const packed = doc.querySelector(`script[type="${PACKED_STATE_TYPE}"]`)?.textContent?.trim();
  if (packed) {
    const stream = new Blob([decodeBase64(packed).buffer as ArrayBuffer])
      .stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }
  return doc.querySelector(`script[type="${STATE_TYPE}"]`)?.textContent || null;
}

export async function renderPage(doc: Document = document): Promise<void> {
  let text: string | null;
  try {
    text = await readState(doc);
  } catch (err) {
    const box = doc.createElement("pre");
    box.className = "ls-page-error";
    box.textContent = `This page could not read its saved views: ${err instanceof Error ? err.message : String(err)}`;
    (doc.body ?? doc.documentElement).prepend(box);
    return;
  }
  if (!text) return;
  const saved = JSON.parse(text) as { state: Record<string, SavedModel> };
  const manager = new PageManager(saved.state);
  const modules = new Map<string, Promise<WidgetModule>>();
  for (const tag of doc.querySelectorAll(`script[type="${VIEW_TYPE}"]`)) {
    try {
      const { model_id } = JSON.parse(tag.textContent ?? "{}") as { model_id: string };
      const model = await manager.get_model(model_id);
      const esm = String(model.get("_esm") ?? "");
      if (!modules.has(esm)) modules.set(esm, loadEsm(esm));
      const mod = await (modules.get(esm) as Promise<WidgetModule>);
      await mod.initialize?.({ model });
      const el = doc.createElement("div");
      el.className = "widget-subarea ls-page-view";
      const css = String(model.get("_css") ?? "");
      if (css) {
        const style = doc.createElement("style");
        style.textContent = css;
        el.append(style);
      }
      tag.after(el);
      await mod.render?.({ model, el });
    } catch (err) {
      showError(tag, err);
    }
  }
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => void renderPage());
  } else {
    void renderPage();
  }
}
