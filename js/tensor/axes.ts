// Axis ticks in tensor indices along the canvas: labels at cell centres, 1-2-5 steps.

import { el } from "../core/dom";
import { cellCentre, niceTicks } from "./viewport";

/** Fill `axis` with tick labels for the cells [lo, hi) shown over `px` CSS pixels. */
export function renderAxis(
  axis: HTMLElement,
  orient: "x" | "y",
  lo: number,
  hi: number,
  px: number,
  offset = 0,
): number[] {
  const ticks = niceTicks(lo, hi, Math.max(2, Math.floor(px / (orient === "x" ? 70 : 28))));
  axis.replaceChildren();
  axis.dataset.lo = String(lo);
  axis.dataset.hi = String(hi);
  for (const t of ticks) {
    const f = cellCentre(t, lo, hi);
    if (f < 0 || f > 1) continue;
    const tick = el("span", "ls-tick", String(t));
    tick.dataset.index = String(t);
    if (orient === "x") tick.style.left = `${offset + f * px}px`;
    else tick.style.top = `${offset + f * px}px`;
    axis.append(tick);
  }
  return ticks;
}
