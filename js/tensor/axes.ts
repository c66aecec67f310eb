// Axis ticks in tensor indices along the canvas: labels at cell centres, 1-2-5 steps. With
// names (the tokens of an attention matrix) the ticks show the names, elided to fit, and the
// index and full name on hover.

import { el } from "../core/dom";
import { elideMiddle } from "../core/format";
import { cellCentre, niceTicks } from "./viewport";

/** Characters of the 10 px axis font that fit in `px` pixels. */
const fitChars = (px: number) => Math.max(3, Math.floor(px / 6.2));

/** Fill `axis` with tick labels for the cells [lo, hi) shown over `px` CSS pixels. */
export function renderAxis(
  axis: HTMLElement,
  orient: "x" | "y",
  lo: number,
  hi: number,
  px: number,
  offset = 0,
  names?: string[],
): number[] {
  const spacing = names ? (orient === "x" ? 44 : 14) : orient === "x" ? 70 : 28;
  const ticks = niceTicks(lo, hi, Math.max(2, Math.floor(px / spacing)));
  axis.replaceChildren();
  axis.dataset.lo = String(lo);
  axis.dataset.hi = String(hi);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  // Room for a name: the tick spacing across the axis (x), the y axis' own width (y).
  const room = orient === "x" ? (step * px) / Math.max(1e-9, hi - lo) - 4 : axis.clientWidth - 6;
  const placed: [HTMLElement, number][] = [];
  for (const t of ticks) {
    const f = cellCentre(t, lo, hi);
    if (f < 0 || f > 1) continue;
    const name = names?.[t];
    const tick = el(
      "span",
      "ls-tick",
      name === undefined ? String(t) : elideMiddle(name, fitChars(room > 0 ? room : 40)),
    );
    if (name !== undefined) tick.title = `[${t}] ${name}`;
    tick.dataset.index = String(t);
    const at = offset + f * px;
    if (orient === "x") tick.style.left = `${at}px`;
    else tick.style.top = `${at}px`;
    placed.push([tick, at]);
  }
  axis.append(...placed.map(([tick]) => tick));
  keepInside(placed, orient, offset + px);
  return ticks;
}

/** A label centred on its tick would be cut at the axis' ends (the "0" of the first cell):
 * align it to the end it would cross instead. Every size is read before any is written: one
 * layout for the axis, not one per tick (each read after a write forced a layout of the page). */
function keepInside(placed: [HTMLElement, number][], orient: "x" | "y", end: number): void {
  const sizes = placed.map(([tick]) => (orient === "x" ? tick.offsetWidth : tick.offsetHeight));
  const translate = orient === "x" ? "translateX" : "translateY";
  placed.forEach(([tick, at], i) => {
    const size = sizes[i];
    if (!size) return;
    if (at - size / 2 < 0) tick.style.transform = `${translate}(${-at}px)`;
    else if (at + size / 2 > end)
      tick.style.transform = `${translate}(calc(-100% + ${end - at}px))`;
  });
}
