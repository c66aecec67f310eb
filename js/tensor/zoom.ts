// Pointer interaction of a zoomable canvas: wheel zooms around the pointer, drag pans,
// shift+drag draws a box to zoom into, double-click resets.

import { boxWin, panBy, type Win, zoomAt } from "./viewport";

export interface ZoomHost {
  win(): Win;
  dims(): [number, number];
  setWin(w: Win, cause: string): void;
  reset(): void;
}

export class ZoomController {
  private drag: { x: number; y: number; win: Win; box: boolean; moved: boolean } | undefined;
  private readonly onMove = (e: MouseEvent) => this.move(e);
  private readonly onUp = (e: MouseEvent) => this.up(e);

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly box: HTMLElement,
    private readonly host: ZoomHost,
  ) {
    box.hidden = true;
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    canvas.addEventListener("mousedown", (e) => this.down(e));
    canvas.addEventListener("dblclick", (e) => {
      e.preventDefault();
      host.reset();
    });
  }

  dispose(): void {
    window.removeEventListener("mousemove", this.onMove);
    window.removeEventListener("mouseup", this.onUp);
  }

  /** True while a drag is under way (hover readouts pause). */
  get dragging(): boolean {
    return this.drag?.moved === true;
  }

  private frac(e: MouseEvent): [number, number] {
    const rect = this.canvas.getBoundingClientRect();
    return [
      Math.min(1, Math.max(0, (e.clientX - rect.left) / Math.max(1, rect.width))),
      Math.min(1, Math.max(0, (e.clientY - rect.top) / Math.max(1, rect.height))),
    ];
  }

  private wheel(e: WheelEvent): void {
    e.preventDefault();
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
    const factor = Math.exp(Math.max(-1, Math.min(1, e.deltaY * unit * 0.002)));
    const [fx, fy] = this.frac(e);
    const [rows, cols] = this.host.dims();
    this.host.setWin(zoomAt(this.host.win(), factor, fx, fy, rows, cols), "wheel");
  }

  private down(e: MouseEvent): void {
    if (e.button !== 0) return;
    e.preventDefault();
    this.drag = { x: e.clientX, y: e.clientY, win: this.host.win(), box: e.shiftKey, moved: false };
    window.addEventListener("mousemove", this.onMove);
    window.addEventListener("mouseup", this.onUp);
  }

  private move(e: MouseEvent): void {
    const d = this.drag;
    if (!d) return;
    const rect = this.canvas.getBoundingClientRect();
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    if (!d.moved && Math.abs(dx) + Math.abs(dy) < 3) return;
    d.moved = true;
    if (d.box) {
      const x0 = Math.min(d.x, e.clientX) - rect.left;
      const y0 = Math.min(d.y, e.clientY) - rect.top;
      Object.assign(this.box.style, {
        left: `${x0}px`,
        top: `${y0}px`,
        width: `${Math.abs(dx)}px`,
        height: `${Math.abs(dy)}px`,
      });
      this.box.hidden = false;
      return;
    }
    const [rows, cols] = this.host.dims();
    this.host.setWin(panBy(d.win, dx / rect.width, dy / rect.height, rows, cols), "pan");
  }

  private up(e: MouseEvent): void {
    const d = this.drag;
    this.drag = undefined;
    window.removeEventListener("mousemove", this.onMove);
    window.removeEventListener("mouseup", this.onUp);
    this.box.hidden = true;
    if (!d?.box || !d.moved) return;
    const rect = this.canvas.getBoundingClientRect();
    const fx = (x: number) => (x - rect.left) / rect.width;
    const fy = (y: number) => (y - rect.top) / rect.height;
    if (Math.abs(e.clientX - d.x) < 4 || Math.abs(e.clientY - d.y) < 4) return;
    const [rows, cols] = this.host.dims();
    this.host.setWin(
      boxWin(d.win, fx(d.x), fy(d.y), fx(e.clientX), fy(e.clientY), rows, cols),
      "box",
    );
  }
}
