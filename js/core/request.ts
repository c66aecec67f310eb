// Request/reply over anywidget custom messages (see layerscope/widgets/base.py).
// The view sends {ls: 1, id, kind, args}; the kernel answers with the same id, JSON content plus
// binary buffers, or an error that the view shows as text.

export interface ModelLike {
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
  on(name: "msg:custom", cb: (msg: unknown, buffers: DataView[]) => void): void;
  off(name: "msg:custom", cb: (msg: unknown, buffers: DataView[]) => void): void;
}

export interface Reply {
  content: Record<string, unknown>;
  buffers: DataView[];
}

export class RequestError extends Error {
  constructor(
    message: string,
    readonly type: string,
  ) {
    super(message);
    this.name = type;
  }
}

/** Thrown when a newer request of the same kind replaced this one (superseded, not failed). */
export class Superseded extends Error {
  constructor() {
    super("superseded by a newer request");
    this.name = "Superseded";
  }
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

let counter = 0;

export class Requester {
  private pending = new Map<string, Pending>();
  private latest = new Map<string, string>();
  private readonly onMessage = (msg: unknown, buffers: DataView[]) => this.receive(msg, buffers);
  /** True once the kernel has answered anything: the view is live, not a baked export. */
  live = false;

  constructor(
    private readonly model: ModelLike,
    private readonly timeoutMs = 60_000,
  ) {
    model.on("msg:custom", this.onMessage);
  }

  dispose(): void {
    this.model.off("msg:custom", this.onMessage);
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new Superseded());
    }
    this.pending.clear();
  }

  /**
   * Send a request. With `latestOnly`, an older pending request under the same `channel` is
   * dropped (its promise rejects with Superseded) and its late reply ignored.
   */
  request(
    kind: string,
    args: Record<string, unknown> = {},
    opts: { channel?: string } = {},
  ): Promise<Reply> {
    counter += 1;
    const id = `${Date.now().toString(36)}-${counter}`;
    const channel = opts.channel;
    if (channel !== undefined) {
      const old = this.latest.get(channel);
      if (old !== undefined) this.settle(old)?.reject(new Superseded());
      this.latest.set(channel, id);
    }
    return new Promise<Reply>((resolve, reject) => {
      const timer = this.timeoutMs
        ? setTimeout(() => {
            this.settle(id)?.reject(
              new RequestError(
                `no answer from the kernel after ${this.timeoutMs / 1000} s (is it busy, or is this an exported page?)`,
                "Timeout",
              ),
            );
          }, this.timeoutMs)
        : undefined;
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.model.send({ ls: 1, id, kind, args });
      } catch (e) {
        this.settle(id)?.reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private settle(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    return p;
  }

  private receive(msg: unknown, buffers: DataView[]): void {
    if (!msg || typeof msg !== "object") return;
    const m = msg as Record<string, unknown>;
    if (m.ls !== 1 || typeof m.id !== "string") return;
    this.live = true;
    const p = this.settle(m.id);
    if (!p) return; // superseded or timed out: drop
    if (m.ok) {
      p.resolve({ content: m, buffers: buffers ?? [] });
    } else {
      const err = (m.error ?? {}) as Record<string, string>;
      p.reject(new RequestError(err.message ?? "request failed", err.type ?? "Error"));
    }
  }
}
