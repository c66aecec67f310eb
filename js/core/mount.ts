// What every view's binding to its anywidget model does: redraw once per kernel update (one
// update sets several traits and fires an event for each), and find out early that no kernel
// answers (an exported page) instead of waiting for a request to time out.
import { isOffline } from "./offline";
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

/** Call `view.setOffline()` (the view then uses what is baked into the page) at once in a page
 * our exporter marked, else when a ping of the kernel gets no answer within `ms` and
 * `requester` never heard from it. A kernel busy with a long cell (Run All: the training cell
 * after this view's) answers that ping late: `view.setOnline()` is then called on the first
 * message the kernel sends, and the view goes back to asking it. */
export function detectOffline(
  model: unknown,
  requester: Requester,
  view: { setOffline(): void; setOnline?(): void },
  ms = 5_000,
): void {
  if (isOffline()) {
    view.setOffline();
    return;
  }
  const probe = new Requester(model as never, ms);
  probe
    .request("ping")
    .catch(() => {
      if (requester.live) return;
      view.setOffline();
      if (!view.setOnline) return;
      const m = model as Events;
      const back = () => {
        m.off("msg:custom", back);
        requester.live = true;
        view.setOnline?.();
      };
      m.on("msg:custom", back);
    })
    .finally(() => probe.dispose());
}

/** A view panel that renders from a state read off its model. */
export interface Panel<S> {
  update(state: S): void;
  showError(text: string): void;
  setOffline(): void;
  /** The kernel answered after all (it was busy): ask it again. */
  setOnline?(): void;
  dispose(): void;
}

/** Bind `panel` to `model`: render `read()` on every burst of `events` (the kernel's `_error`
 * shown, a failed render shown as text, never a blank view), detect an offline page; returns
 * the cleanup. */
export function bindPanel<S extends { error: string }>(
  model: Events,
  requester: Requester,
  panel: Panel<S>,
  read: () => S,
  events: string,
): () => void {
  const refresh = () => {
    try {
      const s = read();
      panel.update(s);
      panel.showError(s.error);
    } catch (e) {
      panel.showError(
        `layerscope could not draw this view: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  };
  const unbind = onChanges(model, events, refresh);
  detectOffline(model, requester, panel);
  return () => {
    unbind();
    panel.dispose();
  };
}
