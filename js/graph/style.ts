// Node colours by module kind: mid-light fills with dark text, legible on Lab's light and dark
// themes alike (the chrome around them uses --jp-* variables), and the view's CSS.
import type { GNode } from "./data";

export interface Kind {
  name: string;
  fill: string;
  stroke: string;
}

const mk = (name: string, fill: string, stroke: string): Kind => ({ name, fill, stroke });

export const KINDS = {
  linear: mk("linear", "#a9c9f2", "#3d6fb0"),
  conv: mk("conv", "#c6b5f2", "#6a4fb8"),
  norm: mk("norm", "#a8e0c6", "#2f8a60"),
  act: mk("activation", "#f9caa2", "#b8682a"),
  pool: mk("pooling", "#f0e39e", "#9c8a1f"),
  drop: mk("dropout", "#d9dde1", "#7b848c"),
  embed: mk("embedding", "#f5b6ca", "#b04a6e"),
  rnn: mk("recurrent", "#cde78f", "#6b8a1c"),
  attn: mk("attention", "#9bdaeb", "#237f99"),
  module: mk("other module", "#cfd8dc", "#607d8b"),
  fn: mk("function", "#eef1f5", "#8a96a3"),
  io: mk("input/output", "#ffe08c", "#b08b12"),
  group: mk("group", "#dfe5f5", "#5c6bc0"),
} as const;

const RULES: [RegExp, Kind][] = [
  [/attention|attn|^head$|multihead/i, KINDS.attn],
  [/conv/i, KINDS.conv],
  [/norm/i, KINDS.norm],
  [/lstm|gru|^rnn/i, KINDS.rnn],
  [/embed/i, KINDS.embed],
  [/dropout/i, KINDS.drop],
  [/pool/i, KINDS.pool],
  [
    /relu|gelu|silu|sigmoid|tanh|softmax|softplus|elu|mish|hardswish|leaky|prelu|glu|activation/i,
    KINDS.act,
  ],
  [/linear|bilinear|identity/i, KINDS.linear],
];

export function kindOfClass(cls: string): Kind {
  for (const [re, k] of RULES) if (re.test(cls)) return k;
  return KINDS.module;
}

export function kindOfNode(node: GNode): Kind {
  if (node.kind === "input" || node.kind === "output") return KINDS.io;
  if (node.kind === "function") return KINDS.fn;
  return kindOfClass(node.name);
}

export const TEXT = "#1b1f24";
export const ACCENT = "#ff6d00";
// Search matches: magenta, a colour no overlay colour map (viridis ends in yellow) and no node
// kind uses, so a match never reads as a high overlay value.
export const MATCH = "#e040fb";

export const GRAPH_CSS = `
.ls-graph .ls-graph-bar { margin-bottom: 6px; }
.ls-graph .ls-graph-search { font: inherit; min-width: 260px; padding: 2px 6px;
  color: var(--jp-ui-font-color1, #222); background: var(--jp-input-background, var(--jp-layout-color1, #fff));
  border: 1px solid var(--jp-border-color1, #bdbdbd); border-radius: 3px; }
.ls-graph .ls-graph-search.ls-bad-query { border-color: var(--jp-error-color1, #d32f2f); }
.ls-graph button { font: inherit; padding: 1px 8px; cursor: pointer; color: var(--jp-ui-font-color1, #222);
  background: var(--jp-layout-color2, #eee); border: 1px solid var(--jp-border-color1, #bdbdbd); border-radius: 3px; }
.ls-graph .ls-graph-main { display: flex; gap: 8px; align-items: stretch; }
.ls-graph .ls-graph-wrap { position: relative; flex: 1 1 auto; min-width: 200px; overflow: hidden;
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 3px; touch-action: none; }
.ls-graph canvas.ls-graph-canvas { display: block; cursor: grab; }
.ls-graph canvas.ls-graph-canvas.ls-panning { cursor: grabbing; }
.ls-graph .ls-graph-details { flex: 0 0 250px; overflow: auto; padding: 4px 8px; box-sizing: border-box;
  border-left: 1px solid var(--jp-border-color2, #e0e0e0); }
.ls-graph .ls-graph-details h4 { margin: 8px 0 2px 0; font-size: inherit; }
.ls-graph .ls-graph-details .ls-mono { word-break: break-all; }
.ls-graph .ls-graph-details ul { margin: 2px 0; padding-left: 16px; }
.ls-graph .ls-graph-tip { position: absolute; pointer-events: none; display: none; z-index: 2; max-width: 340px;
  background: var(--jp-layout-color0, #fff); color: var(--jp-ui-font-color1, #222);
  border: 1px solid var(--jp-border-color1, #bdbdbd); border-radius: 3px; padding: 4px 6px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.25); white-space: pre; font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px); }
.ls-graph .ls-graph-legend { position: absolute; left: 6px; bottom: 6px; padding: 4px 6px; border-radius: 3px;
  background: var(--jp-layout-color0, #fff); border: 1px solid var(--jp-border-color2, #e0e0e0); opacity: 0.95; }
.ls-graph .ls-graph-legend .ls-graph-ramp { width: 140px; height: 10px; border-radius: 2px; margin: 2px 0; }
.ls-graph .ls-graph-kinds { font-size: var(--jp-ui-font-size0, 11px); margin: 2px 0 4px 0; }
`;
