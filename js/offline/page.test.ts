import { describe, expect, it } from "vitest";
import { PageManager, putBuffers, readState } from "./page";

describe("offline page manager", () => {
  it("puts base64 buffers back at their paths as DataViews", () => {
    const state: Record<string, unknown> = { data: { buffer: null, shape: [2] } };
    putBuffers(state, [{ path: ["data", "buffer"], data: btoa("\x01\x02"), encoding: "base64" }]);
    const dv = (state.data as { buffer: DataView }).buffer;
    expect(dv).toBeInstanceOf(DataView);
    expect([dv.getUint8(0), dv.getUint8(1)]).toEqual([1, 2]);
  });

  it("skips a buffer whose place is gone from the state", () => {
    const state: Record<string, unknown> = { a: { b: [null] } };
    putBuffers(state, [
      { path: ["a", "b", 0], data: btoa("\x07"), encoding: "base64" },
      { path: ["gone", "b", 0], data: btoa("\x08"), encoding: "base64" },
    ]);
    expect(((state.a as { b: DataView[] }).b[0] as DataView).getUint8(0)).toBe(7);
    expect("gone" in state).toBe(false);
  });

  it("fires change events on set, forgets removed callbacks, rejects unknown models", async () => {
    const m = new PageManager({
      a: { model_name: "AnyModel", model_module: "anywidget", state: { x: 1 } },
    });
    const model = await m.get_model("a");
    const seen: unknown[] = [];
    const cb = (_: unknown, v: unknown) => seen.push(v);
    model.on("change:x", cb);
    model.set("x", 2);
    model.set("x", 2); // equal value: no event, as traitlets and Backbone do
    model.off("change:x", cb);
    model.set("x", 3);
    expect(seen).toEqual([2]);
    expect(model.get("x")).toBe(3);
    await expect(m.get_model("b")).rejects.toThrow("no model b");
  });

  it("reads the packed state (gzip, base64) and falls back to the plain JSON tag", async () => {
    const text = JSON.stringify({ state: { a: { model_name: "AnyModel", state: { x: "é" } } } });
    const gz = await new Response(
      new Blob([new TextEncoder().encode(text)])
        .stream()
        .pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    const b64 = btoa(String.fromCharCode(...new Uint8Array(gz)));
    const page = (tags: Record<string, string>) =>
      ({
        querySelector: (sel: string) => {
          const type = /type="([^"]+)"/.exec(sel)?.[1] ?? "";
          return type in tags ? { textContent: tags[type] } : null;
        },
      }) as unknown as Document;
    expect(await readState(page({ "application/vnd.layerscope.widget-state+gzip": b64 }))).toBe(
      text,
    );
    expect(await readState(page({ "application/vnd.jupyter.widget-state+json": text }))).toBe(text);
    expect(await readState(page({}))).toBeNull();
  });
});
