// A sortable, virtualized table: only the rows in view (plus a few) are in the DOM, so tens of
// thousands of rows scroll smoothly. Cell text is text (textContent), never HTML.
//
// Readable at any width: each column is as wide as its longest text, the first (flexible) column
// takes the rest and elides its text in the middle (the tail tells rows apart:
// "layers.0.self_attn.in_proj_weight" -> "…0…in_proj_weight", see elidePath), columns that
// do not fit are left out by priority, and every cell and header shows its full text on hover.

import { el } from "../core/dom";
import { elideMiddle } from "../core/format";

export interface Column {
  key: string;
  label: string;
  /** Text of a cell. */
  text: (row: number) => string;
  /** Sort key of a cell (numbers sort numerically, nulls last). */
  sortKey: (row: number) => number | string | null;
  numeric?: boolean;
  /** Lower is kept longer when the table is narrow (default 5); the first column is always kept. */
  priority?: number;
  /** Header title on hover (default: the label). */
  title?: string;
}

export const ROW_HEIGHT = 22;
const OVERSCAN = 6;
/** Width of a character of the table's 12 px monospace font, and a cell's padding. */
const CH = 7.3;
const PAD = 14;
const FIRST_MIN = 120;

/**
 * A dotted path shortened to at most `n` characters so that rows stay apart: whole segments are
 * dropped (a run of dropped ones shows as "…"): names before indices, those shared by the most
 * rows (`freq`) first, the last segment never; elideMiddle if that is not enough.
 * "layers.0.self_attn.in_proj_weight" -> "…0…in_proj_weight" beside "…1…in_proj_weight".
 */
export function elidePath(s: string, n: number, freq: Map<string, number>): string {
  if (s.length <= n) return s;
  const segs = s.split(".");
  const dropped = segs.map(() => false);
  const join = () => {
    let out = "";
    segs.forEach((seg, i) => {
      if (dropped[i]) {
        if (i === 0 || !dropped[i - 1]) out += "…";
      } else {
        out += (i > 0 && !dropped[i - 1] ? "." : "") + seg;
      }
    });
    return out;
  };
  const order = segs.map((_, i) => i).slice(0, -1);
  const numeric = (i: number) => /^\d+$/.test(segs[i]);
  // Names before indices (an index is what tells layer 0 from layer 1), then the most shared.
  order.sort(
    (a, b) =>
      Number(numeric(a)) - Number(numeric(b)) ||
      (freq.get(segs[b]) ?? 0) - (freq.get(segs[a]) ?? 0) ||
      a - b,
  );
  for (const i of order) {
    dropped[i] = true;
    const t = join();
    if (t.length <= n) return t;
  }
  return elideMiddle(join(), n);
}

/** How many rows each dotted segment appears in (for elidePath). */
export function segmentCounts(texts: string[]): Map<string, number> {
  const freq = new Map<string, number>();
  for (const t of texts)
    for (const seg of new Set(t.split("."))) freq.set(seg, (freq.get(seg) ?? 0) + 1);
  return freq;
}

/** Which columns fit in `width` px: the first always, the others by priority (then order). */
export function fitColumns(widths: number[], priorities: number[], width: number): boolean[] {
  const keep = widths.map((_, i) => i === 0);
  let used = FIRST_MIN;
  const rest = widths.map((_, i) => i).slice(1);
  rest.sort((a, b) => priorities[a] - priorities[b] || a - b);
  for (const i of rest) {
    if (used + widths[i] > width) continue;
    keep[i] = true;
    used += widths[i];
  }
  return keep;
}

/** Row order for a sort by `key` (stable; nulls last in both directions). */
export function sortOrder(
  n: number,
  key: (row: number) => number | string | null,
  desc: boolean,
): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka === null || (typeof ka === "number" && Number.isNaN(ka))) return kb === null ? a - b : 1;
    if (kb === null || (typeof kb === "number" && Number.isNaN(kb))) return -1;
    const c = ka < kb ? -1 : ka > kb ? 1 : 0;
    return (desc ? -c : c) || a - b;
  });
  return order;
}

export class VirtualTable {
  readonly root = el("div", "ls-table");
  private readonly head = el("div", "ls-table-head");
  private readonly scroller = el("div", "ls-table-body");
  private readonly spacer = el("div", "ls-table-spacer");
  private readonly rowsEl = el("div", "ls-table-rows");
  private columns: Column[] = [];
  private n = 0;
  private order: number[] = [];
  private sortKey = "";
  private desc = false;
  private selected = -1;
  /** Content width of each column (px), the columns shown, and the first column's characters. */
  private widths: number[] = [];
  private shown: Column[] = [];
  private firstChars = 40;
  private firstFreq = new Map<string, number>();
  private lastWidth = -1;
  private readonly resize: ResizeObserver | undefined;

  constructor(
    private readonly onSelect: (row: number) => void,
    private readonly height = 220,
  ) {
    this.scroller.style.height = `${height}px`;
    this.spacer.append(this.rowsEl);
    this.scroller.append(this.spacer);
    this.root.append(this.head, this.scroller);
    this.scroller.addEventListener("scroll", () => this.renderRows());
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => {
        if (this.root.clientWidth !== this.lastWidth) this.layout();
      });
      this.resize.observe(this.root);
    }
  }

  dispose(): void {
    this.resize?.disconnect();
  }

  setData(columns: Column[], n: number): void {
    this.columns = columns;
    this.n = n;
    this.order = Array.from({ length: n }, (_, i) => i);
    // Longest text of each column over (at most 2,000 of) its rows, and of its header.
    const step = Math.max(1, Math.floor(n / 2000));
    this.widths = columns.map((c) => {
      let longest = c.label.length + 2; // room for the sort arrow
      for (let i = 0; i < n; i += step) longest = Math.max(longest, c.text(i).length);
      return Math.ceil(longest * CH + PAD);
    });
    this.firstFreq = segmentCounts(
      columns.length ? Array.from({ length: n }, (_, i) => columns[0].text(i)) : [],
    );
    if (this.sortKey) this.sort(this.sortKey, this.desc);
    this.spacer.style.height = `${n * ROW_HEIGHT}px`;
    this.layout();
  }

  /** Choose the columns that fit the current width and size them. */
  private layout(): void {
    const width = this.root.clientWidth || 600;
    this.lastWidth = this.root.clientWidth;
    const scrollbar = 16;
    const keep = fitColumns(
      this.widths,
      this.columns.map((c) => c.priority ?? 5),
      width - scrollbar,
    );
    this.shown = this.columns.filter((_, i) => keep[i]);
    const fixed = this.widths.reduce((a, w, i) => a + (i > 0 && keep[i] ? w : 0), 0);
    const first = Math.max(FIRST_MIN, width - scrollbar - fixed);
    this.firstChars = Math.max(4, Math.floor((first - PAD) / CH));
    const template = this.columns
      .map((_, i) =>
        !keep[i] ? "" : i === 0 ? `minmax(${FIRST_MIN}px, 1fr)` : `${this.widths[i]}px`,
      )
      .filter(Boolean)
      .join(" ");
    this.root.style.setProperty("--ls-table-cols", template);
    this.root.dataset.columns = this.shown.map((c) => c.key).join(",");
    this.renderHead();
    this.renderRows();
  }

  sort(key: string, desc: boolean): void {
    const col = this.columns.find((c) => c.key === key);
    if (!col) return;
    this.sortKey = key;
    this.desc = desc;
    this.order = sortOrder(this.n, col.sortKey, desc);
    this.renderHead();
    this.renderRows();
  }

  select(row: number): void {
    this.selected = row;
    this.renderRows();
  }

  /** Scroll so that data row `row` is visible. */
  reveal(row: number): void {
    const pos = this.order.indexOf(row);
    if (pos < 0) return;
    const top = pos * ROW_HEIGHT;
    if (top < this.scroller.scrollTop || top > this.scroller.scrollTop + this.height - ROW_HEIGHT)
      this.scroller.scrollTop = Math.max(0, top - this.height / 2);
    this.renderRows();
  }

  private renderHead(): void {
    this.head.replaceChildren();
    for (const c of this.shown) {
      const arrow = c.key === this.sortKey ? (this.desc ? " ▼" : " ▲") : "";
      const h = el("div", `ls-th${c.numeric ? " ls-num" : ""}`, c.label + arrow);
      h.title = c.title ?? c.label;
      h.dataset.key = c.key;
      h.addEventListener("click", () =>
        this.sort(c.key, c.key === this.sortKey ? !this.desc : !!c.numeric),
      );
      this.head.append(h);
    }
  }

  private renderRows(): void {
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(
      this.n,
      Math.ceil((this.scroller.scrollTop + this.height) / ROW_HEIGHT) + OVERSCAN,
    );
    this.rowsEl.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    this.rowsEl.replaceChildren();
    for (let pos = first; pos < last; pos++) {
      const row = this.order[pos];
      const tr = el("div", `ls-tr${row === this.selected ? " ls-selected" : ""}`);
      tr.dataset.row = String(row);
      this.shown.forEach((c, k) => {
        const full = c.text(row);
        const text =
          k === 0 && c === this.columns[0]
            ? elidePath(full, this.firstChars, this.firstFreq)
            : full;
        const td = el("div", `ls-td${c.numeric ? " ls-num" : ""}`, text);
        td.title = full;
        tr.append(td);
      });
      tr.addEventListener("click", () => this.onSelect(row));
      this.rowsEl.append(tr);
    }
  }
}

export const TABLE_CSS = `
.ls-table { font-size: 12px; border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; }
.ls-table-head, .ls-tr { display: grid; grid-template-columns: var(--ls-table-cols, 1fr); }
.ls-table-head { background: var(--jp-layout-color2, #eee); font-weight: 600; padding-right: 16px; }
.ls-th { padding: 2px 6px; cursor: pointer; user-select: none; white-space: nowrap; overflow: hidden;
  font-family: var(--jp-code-font-family, monospace); }
.ls-table-body { overflow-y: auto; position: relative; }
.ls-table-spacer { position: relative; }
.ls-tr { height: ${ROW_HEIGHT}px; line-height: ${ROW_HEIGHT}px; cursor: pointer; }
.ls-tr:hover { background: var(--jp-layout-color2, #f3f3f3); }
.ls-tr.ls-selected { background: var(--jp-brand-color1, #1976d2); color: var(--jp-ui-inverse-font-color1, #fff); }
.ls-td { padding: 0 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  font-family: var(--jp-code-font-family, monospace); }
.ls-num { text-align: right; }
`;
