import { describe, expect, it } from "vitest";
import { FakeModel } from "./fake-model";
import { RequestError, Requester, Superseded } from "./request";

describe("Requester", () => {
  it("resolves a reply with the same id, buffers included", async () => {
    const m = new FakeModel();
    const r = new Requester(m, 0);
    const p = r.request("tile", { level: 2 });
    expect(m.sent[0]).toMatchObject({ ls: 1, kind: "tile", args: { level: 2 } });
    const buf = new DataView(new ArrayBuffer(4));
    m.reply({ ls: 1, id: "other", ok: true });
    m.reply({ ls: 1, id: m.sent[0].id, ok: true, x: 1 }, [buf]);
    const reply = await p;
    expect(reply.content.x).toBe(1);
    expect(reply.buffers[0]).toBe(buf);
    expect(r.live).toBe(true);
  });

  it("turns an error reply into a readable RequestError", async () => {
    const m = new FakeModel();
    const r = new Requester(m, 0);
    const p = r.request("value", {});
    m.reply({
      ls: 1,
      id: m.sent[0].id,
      ok: false,
      error: { type: "IndexError", message: "(9, 9) is outside" },
    });
    await expect(p).rejects.toBeInstanceOf(RequestError);
    await expect(p).rejects.toThrow("(9, 9) is outside");
  });

  it("drops a superseded request on the same channel and ignores its late reply", async () => {
    const m = new FakeModel();
    const r = new Requester(m, 0);
    const first = r.request("tile", { n: 1 }, { channel: "view" });
    const second = r.request("tile", { n: 2 }, { channel: "view" });
    await expect(first).rejects.toBeInstanceOf(Superseded);
    m.reply({ ls: 1, id: m.sent[0].id, ok: true, n: 1 });
    m.reply({ ls: 1, id: m.sent[1].id, ok: true, n: 2 });
    expect((await second).content.n).toBe(2);
  });

  it("times out with a message when no kernel answers", async () => {
    const m = new FakeModel();
    const r = new Requester(m, 20);
    await expect(r.request("value")).rejects.toThrow(/no answer from the kernel/);
  });
});
