import { describe, expect, it, vi } from "vitest";
import { FakeModel } from "./fake-model";
import { detectOffline } from "./mount";
import { Requester } from "./request";

const view = (calls: string[]) => ({
  setOffline: () => calls.push("offline"),
  setOnline: () => calls.push("online"),
});

describe("detectOffline", () => {
  it("goes offline when the ping times out, and back online when a busy kernel answers late", async () => {
    vi.useFakeTimers();
    try {
      const m = new FakeModel();
      const requester = new Requester(m, 0);
      const calls: string[] = [];
      detectOffline(m, requester, view(calls), 50);
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
    detectOffline(m, requester, view(calls), 1_000);
    m.reply({ ls: 1, id: m.sent[0].id, ok: true });
    await Promise.resolve();
    await Promise.resolve();
    expect(calls).toEqual([]);
  });
});
