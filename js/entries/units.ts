// anywidget entry of ls.units (UnitsView).
import type { RenderProps } from "@anywidget/types";
import { Requester } from "../core/request";
import { type Model, mountUnits } from "../units/bind";

function render({ model, el }: RenderProps<Record<string, unknown>>) {
  const requester = new Requester(model as never, 30_000);
  const [panel, cleanup] = mountUnits(model as Model, requester);
  el.append(panel.root);
  return () => {
    cleanup();
    requester.dispose();
  };
}

export default { render };
