// Shared look: JupyterLab's --jp-* variables with fallbacks for pages without them (an exported
// page has no Lab theme). Dark themes just work because every colour comes from a variable.

export const BASE_CSS = `
.ls-view { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, rgba(0,0,0,0.87)); background: var(--jp-layout-color0, #fff);
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 4px; padding: 8px; box-sizing: border-box;
  max-width: 100%; position: relative; }
.ls-title { font-weight: 600; margin: 0 0 4px 0; }
.ls-muted { color: var(--jp-ui-font-color2, rgba(0,0,0,0.54)); }
.ls-row { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; }
.ls-error { color: var(--jp-error-color1, #d32f2f); background: var(--jp-error-color3, #ffebee);
  border-radius: 3px; padding: 4px 8px; margin: 4px 0; white-space: pre-wrap; font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px); }
.ls-empty { padding: 24px; text-align: center; color: var(--jp-ui-font-color2, rgba(0,0,0,0.54));
  border: 1px dashed var(--jp-border-color2, #e0e0e0); border-radius: 4px; }
.ls-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
  vertical-align: -1px; border: 1px solid var(--jp-border-color1, #bdbdbd); }
.ls-mono { font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 12px); }
`;
