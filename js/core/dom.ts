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
