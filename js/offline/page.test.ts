import { describe, expect, it } from "vitest";
import { PageManager, putBuffers } from "./page";

describe("offline page manager", () => {
  it("puts base64 buffers back at their paths as DataViews", () => {
    const state: Record<string, unknown> = { data: { buffer: null, shape: [2] } };
    putBuffers(state, [{ path: ["data", "buffer"], data: btoa("\x01\x02"), encoding: "base64" }]);
    const dv = (state.data as { buffer: DataView }).buffer;
    expect(dv).toBeInstanceOf(DataView);
    expect([dv.getUint8(0), dv.getUint8(1)]).toEqual([1, 2]);
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
});
