// What every anywidget entry shares: the view's stylesheets go into the element the host gave it.
import type { RenderProps } from "@anywidget/types";
import { styleHost } from "./dom";

type Render = (props: RenderProps<Record<string, unknown>>) => (() => void) | undefined;

/** The anywidget module of a view: `render` with its styles attached to its own element. */
export function entry(render: Render): {
  render: (props: RenderProps<Record<string, unknown>>) => () => void;
} {
  return {
    render(props) {
      const unstyle = styleHost(props.el);
      const cleanup = render(props);
      return () => {
        unstyle();
        cleanup?.();
      };
    },
  };
}
