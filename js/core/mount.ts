// What every view's binding to its anywidget model does: redraw once per kernel update (one
// update sets several traits and fires an event for each), and find out early that no kernel
// answers (an exported page) instead of waiting for a request to time out.
import { Requester } from "./request";

interface Events {
  on(names: string, cb: () => void): void;
  off(names: string, cb: () => void): void;
}

/** Call `refresh` now and once per burst of `events` (a microtask later); returns the unbind. */
export function onChanges(model: Events, events: string, refresh: () => void): () => void {
  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      refresh();
    });
  };
  refresh();
  model.on(events, schedule);
  return () => model.off(events, schedule);
}

/** Ping the kernel; if nothing answers within `ms` and `requester` never heard from it, call
 * `offline` (the view then uses what is baked into the page). */
export function detectOffline(
  model: unknown,
  requester: Requester,
  offline: () => void,
  ms = 5_000,
): void {
  const probe = new Requester(model as never, ms);
  probe
    .request("ping")
    .catch(() => {
      if (!requester.live) offline();
    })
    .finally(() => probe.dispose());
}
