// A sortable, virtualized table: only the rows in view (plus a few) are in the DOM, so tens of
// thousands of rows scroll smoothly. Cell text is text (textContent), never HTML.

import { el } from "../core/dom";

export interface Column {
  key: string;
  label: string;
  /** Text of a cell. */
  text: (row: number) => string;
  /** Sort key of a cell (numbers sort numerically, nulls last). */
  sortKey: (row: number) => number | string | null;
  numeric?: boolean;
}

export const ROW_HEIGHT = 22;
const OVERSCAN = 6;

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

  constructor(
    private readonly onSelect: (row: number) => void,
    private readonly height = 220,
  ) {
    this.scroller.style.height = `${height}px`;
    this.spacer.append(this.rowsEl);
    this.scroller.append(this.spacer);
    this.root.append(this.head, this.scroller);
    this.scroller.addEventListener("scroll", () => this.renderRows());
  }

  setData(columns: Column[], n: number): void {
    this.columns = columns;
    this.n = n;
    this.order = Array.from({ length: n }, (_, i) => i);
    if (this.sortKey) this.sort(this.sortKey, this.desc);
    this.renderHead();
    this.spacer.style.height = `${n * ROW_HEIGHT}px`;
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
    for (const c of this.columns) {
      const arrow = c.key === this.sortKey ? (this.desc ? " ▼" : " ▲") : "";
      const h = el("div", `ls-th${c.numeric ? " ls-num" : ""}`, c.label + arrow);
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
      for (const c of this.columns)
        tr.append(el("div", `ls-td${c.numeric ? " ls-num" : ""}`, c.text(row)));
      tr.addEventListener("click", () => this.onSelect(row));
      this.rowsEl.append(tr);
    }
  }
}

export const TABLE_CSS = `
.ls-table { font-size: 12px; border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; }
.ls-table-head, .ls-tr { display: grid; grid-template-columns: minmax(140px, 3fr) 0.8fr 1.4fr 0.9fr 1fr 1fr 1fr 1fr 0.6fr 0.6fr; }
.ls-table-head { background: var(--jp-layout-color2, #eee); font-weight: 600; }
.ls-th { padding: 2px 6px; cursor: pointer; user-select: none; white-space: nowrap; overflow: hidden; }
.ls-table-body { overflow-y: auto; position: relative; }
.ls-table-spacer { position: relative; }
.ls-tr { height: ${ROW_HEIGHT}px; line-height: ${ROW_HEIGHT}px; cursor: pointer; }
.ls-tr:hover { background: var(--jp-layout-color2, #f3f3f3); }
.ls-tr.ls-selected { background: var(--jp-brand-color3, #bbdefb); }
.ls-td { padding: 0 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  font-family: var(--jp-code-font-family, monospace); }
.ls-num { text-align: right; }
`;
