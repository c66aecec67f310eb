// A panel's model inside the workspace: it looks like an anywidget model to the component that
// renders it (get/set/on/off/save_changes/send), and its state comes from the workspace (baked
// per layer) and from the panel's headless view in the kernel (relayed over the workspace's
// comm: see layerscope/widgets/relay.py).

type Listener = (...args: unknown[]) => void;

export interface PanelState {
  state: Record<string, unknown>;
  buffer_paths: (string | number)[][];
  buffers: unknown[];
}

/** Any binary form a host hands over (DataView, ArrayBuffer, typed array, base64 string) as a
 * DataView: Jupyter gives DataViews, marimo may give base64 text. */
export function toDataView(b: unknown): DataView {
  if (b instanceof DataView) return b;
  if (b instanceof ArrayBuffer) return new DataView(b);
  if (ArrayBuffer.isView(b)) return new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (typeof b === "string") {
    const bin = atob(b);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return new DataView(out.buffer);
  }
  throw new Error(`a binary buffer was expected, got ${typeof b}`);
}

/** ipywidgets' put_buffers: each buffer goes back to its place in the (copied) state. */
export function putBuffers(p: PanelState | undefined): Record<string, unknown> {
  if (!p) return {};
  const state = structuredCloneJson(p.state);
  p.buffer_paths.forEach((path, i) => {
    let obj = state as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) obj = obj[key] as Record<string | number, unknown>;
    obj[path[path.length - 1]] = toDataView(p.buffers[i]);
  });
  return state;
}

function structuredCloneJson<T>(v: T): T {
  if (Array.isArray(v)) return v.map(structuredCloneJson) as T;
  if (v && typeof v === "object" && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = structuredCloneJson(x);
    return out as T;
  }
  return v;
}

export interface RootLike {
  send(content: unknown, callbacks?: unknown, buffers?: unknown[]): void;
}

/**
 * `identity` names the traits that say which layer the panel's data belongs to. An update from
 * the kernel for another layer than the workspace expects (the user clicked on meanwhile) is
 * held back, and dropped when the kernel moves on: a panel never shows another layer's data.
 */
export class PanelModel {
  private state: Record<string, unknown> = {};
  private listeners = new Map<string, Set<Listener>>();
  private dirty: Record<string, unknown> = {};
  private held: Record<string, unknown> = {};
  expected: Record<string, unknown> = {};
  /** Called after the kernel's data for the expected layer was loaded. */
  received: () => void = () => undefined;
  /** Traits the workspace owns (epoch, layer, sample): set here, they go to the workspace. */
  intercept: (name: string, value: unknown) => boolean = () => false;

  constructor(
    readonly name: string,
    private readonly root: RootLike,
    readonly identity: string[],
    initial: Record<string, unknown>,
  ) {
    this.state = { ...initial };
  }

  get(name: string): unknown {
    return this.state[name];
  }

  set(name: string, value: unknown): void {
    if (this.intercept(name, value)) return;
    this.state[name] = value;
    this.dirty[name] = value;
    this.emit(`change:${name}`);
  }

  save_changes(): void {
    const state = this.dirty;
    this.dirty = {};
    if (Object.keys(state).length === 0) return;
    this.root.send({ ls_panel: this.name, data: { method: "update", state, buffer_paths: [] } });
  }

  send(content: unknown, _callbacks?: unknown, buffers?: unknown[]): void {
    this.root.send(
      { ls_panel: this.name, data: { method: "custom", content } },
      undefined,
      buffers,
    );
  }

  on(names: string, cb: Listener): void {
    for (const n of names.split(/\s+/).filter(Boolean)) {
      let set = this.listeners.get(n);
      if (!set) {
        set = new Set();
        this.listeners.set(n, set);
      }
      set.add(cb);
    }
  }

  off(names: string, cb: Listener): void {
    for (const n of names.split(/\s+/).filter(Boolean)) this.listeners.get(n)?.delete(cb);
  }

  private emit(name: string, ...args: unknown[]): void {
    for (const cb of [...(this.listeners.get(name) ?? [])]) cb(...args);
  }

  /** Does `state` (merged over what is held) belong to the expected layer? */
  private matches(state: Record<string, unknown>): boolean {
    return this.identity.every(
      (k) => !(k in this.expected) || !(k in state) || state[k] === this.expected[k],
    );
  }

  /** Replace the per-layer state (from the baked state): listeners hear every key. */
  load(state: Record<string, unknown>): void {
    this.held = {};
    Object.assign(this.state, state);
    for (const k of Object.keys(state)) this.emit(`change:${k}`);
  }

  /** A message from the panel's headless view in the kernel. */
  receive(data: Record<string, unknown>, buffers: unknown[]): void {
    if (data.method === "custom") {
      this.emit("msg:custom", data.content, buffers.map(toDataView));
      return;
    }
    if (data.method !== "update") return;
    const update = putBuffers({
      state: data.state as Record<string, unknown>,
      buffer_paths: (data.buffer_paths as (string | number)[][]) ?? [],
      buffers,
    });
    // A new identity starts a new layer's data: what was held for an older one is dropped.
    if (this.identity.some((k) => k in update)) this.held = {};
    const merged = { ...this.held, ...update };
    const identity = Object.fromEntries(
      this.identity.map((k) => [k, k in merged ? merged[k] : this.state[k]]),
    );
    if (!this.matches(identity)) {
      this.held = merged;
      return;
    }
    this.held = {};
    this.load(merged);
    this.received();
  }
}
