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

/** Add a stylesheet once per document (views share it). */
export function ensureStyle(id: string, css: string, root: ParentNode = document.head): void {
  const doc = (root as Node).ownerDocument ?? document;
  if (doc.getElementById(id)) return;
  const style = doc.createElement("style");
  style.id = id;
  style.textContent = css;
  (doc.head ?? root).appendChild(style);
}
