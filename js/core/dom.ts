// Small DOM helpers. Text from the model (names, labels) only ever goes in through textContent.

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Every component's stylesheet, by id. Styles go into each view's own root element, never into
// document.head: hosts that render widgets in a shadow DOM (marimo) would not see them there.
const styles = new Map<string, string>();
const hosts = new Set<HTMLElement>();

function fill(host: HTMLElement, id: string, css: string): void {
  if (host.querySelector(`:scope > style[data-ls-style="${id}"]`)) return;
  const style = document.createElement("style");
  style.dataset.lsStyle = id;
  style.textContent = css;
  host.prepend(style);
}

/** Register a component's stylesheet; every view root (see `styleHost`) gets it. */
export function ensureStyle(id: string, css: string): void {
  if (styles.get(id) === css) return;
  styles.set(id, css);
  for (const host of hosts) fill(host, id, css);
}

/** Put every registered stylesheet (and those registered later) into `host`, the element a
 * host page gave the view: its styles travel with it, into a shadow root too. */
export function styleHost(host: HTMLElement): () => void {
  for (const [id, css] of styles) fill(host, id, css);
  hosts.add(host);
  return () => hosts.delete(host);
}

/** Past this many options a `LazySelect` holds the chosen one alone until it is used. */
const LAZY_OPTIONS = 500;

/**
 * A <select> over a list that can hold thousands of entries (a 48-block transformer has ~3,500
 * layers): as <option>s they cost a view's first display tens of ms of DOM and style work. Past
 * LAZY_OPTIONS it holds the chosen entry alone until the user reaches for it (pointer or
 * keyboard), then every entry.
 */
export class LazySelect<T> {
  readonly root: HTMLSelectElement;
  private all = false;
  private source: readonly T[] = [];
  private current = "";
  private missing: string | undefined;
  private shown: { source: readonly T[]; missing: string | undefined } | null = null;

  /** `item(entry)` is the entry's [value, label]; `onChange(value)` runs on the user's pick. */
  constructor(
    className: string,
    private readonly item: (entry: T) => [string, string],
    onChange: (value: string) => void,
  ) {
    this.root = el("select", className);
    this.root.addEventListener("change", () => {
      this.current = this.root.value;
      onChange(this.root.value);
    });
    const open = () => {
      if (this.all) return;
      this.all = true;
      this.render();
    };
    for (const ev of ["pointerdown", "mousedown", "focus", "keydown"])
      this.root.addEventListener(ev, open);
  }

  /** Show `source` with `current` chosen; `missing`, if given, labels an extra first option for a
   * `current` that is not in `source`. The options are made again only for a new `source`. */
  show(source: readonly T[], current: string, missing?: string): void {
    this.source = source;
    this.current = current;
    this.missing = missing;
    this.render();
  }

  private option([value, label]: [string, string]): HTMLOptionElement {
    const o = el("option", "", label);
    o.value = value;
    return o;
  }

  private render(): void {
    const { root, source, current, missing } = this;
    const extra = missing !== undefined ? [this.option([current, missing])] : [];
    if (this.all || source.length <= LAZY_OPTIONS) {
      if (this.shown?.source !== source || this.shown.missing !== missing) {
        root.replaceChildren(...extra, ...source.map((e) => this.option(this.item(e))));
        this.shown = { source, missing };
      }
    } else if (root.options.length !== 1 || root.options[0].value !== current) {
      const found = source.find((e) => this.item(e)[0] === current);
      root.replaceChildren(...(found !== undefined ? [this.option(this.item(found))] : extra));
      this.shown = null;
    }
    root.value = current;
  }
}
