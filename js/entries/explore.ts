// anywidget entry of ls.explore (ExploreView): the linked workspace.
import type { RenderProps } from "@anywidget/types";
import { entry } from "../core/entry";
import { Workspace } from "../explore/workspace";

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const view = new Workspace(model as never);
  el.append(view.root);
  return () => view.dispose();
}

export default entry(render);
