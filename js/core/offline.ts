// An exported page has no kernel: layerscope's exporter marks it (window.__layerscopeOffline),
// so views say what the page holds instead of waiting for an answer that cannot come.

export function isOffline(): boolean {
  return (globalThis as { __layerscopeOffline?: boolean }).__layerscopeOffline === true;
}

export const NOT_SAVED = "not saved in this page";
