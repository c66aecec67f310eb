import { describe, expect, it, vi } from "vitest";
import { detectOffline } from "./mount";
import { Requester } from "./request";

class FakeModel {
  sent: Record<string, unknown>[] = [];
  private handlers: ((msg: unknown, buffers: DataView[]) => void)[] = [];
  send(content: unknown) {
    this.sent.push(content as Record<string, unknown>);
  }
  on(_name: string, cb: (msg: unknown, buffers: DataView[]) => void) {
    this.handlers.push(cb);
  }
  off(_name: string, cb: (msg: unknown, buffers: DataView[]) => void) {
    this.handlers = this.handlers.filter((h) => h !== cb);
  }
  reply(msg: unknown) {
    for (const h of [...this.handlers]) h(msg, []);
  }
}

describe("detectOffline", () => {
  it("goes offline when the ping times out, and back online when a busy kernel answers late", async () => {
    vi.useFakeTimers();
    try {
      const m = new FakeModel();
      const requester = new Requester(m, 0);
      const calls: string[] = [];
      detectOffline(
        m,
        requester,
        () => calls.push("offline"),
        50,
        () => calls.push("online"),
      );
      expect(m.sent[0]).toMatchObject({ kind: "ping" });
      await vi.advanceTimersByTimeAsync(60);
      expect(calls).toEqual(["offline"]);
      // the kernel, done with the cell that kept it busy, answers the ping
      m.reply({ ls: 1, id: m.sent[0].id, ok: true });
      expect(calls).toEqual(["offline", "online"]);
      expect(requester.live).toBe(true);
      m.reply({ ls: 1, id: "later", ok: true });
      expect(calls).toEqual(["offline", "online"]); // once
    } finally {
      vi.useRealTimers();
    }
  });

  it("stays online when the kernel answers in time", async () => {
    const m = new FakeModel();
    const requester = new Requester(m, 0);
    const calls: string[] = [];
    detectOffline(
      m,
      requester,
      () => calls.push("offline"),
      1_000,
      () => calls.push("online"),
    );
    m.reply({ ls: 1, id: m.sent[0].id, ok: true });
    await Promise.resolve();
    await Promise.resolve();
    expect(calls).toEqual([]);
  });
});
