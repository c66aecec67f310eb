// The point renderer. On a hardware GPU: WebGL2, float32 positions (relative to an origin, see
// geometry.recentred) and RGBA8 colours uploaded once, round points in one draw call, pan and
// zoom as two uniforms. Where WebGL is software or missing: the points are written into pixels
// on the CPU (raster.ts: 1M points in ~10-20 ms a frame, against ~0.5 s through SwiftShader).
// Selected points are drawn on top with an outline either way.
import { needsRebase, recentred, type ViewBox } from "./geometry";
import { softwareGl, splat, word, words } from "./raster";

const VS = `#version 300 es
in vec2 pos;
in vec4 colour;
uniform vec2 shift;   // view centre - buffer origin (float64 difference, small)
uniform vec2 scale;   // 2 * k / canvas size (clip units per data unit)
uniform float size;
out vec4 v_colour;
void main() {
  vec2 p = (pos - shift) * scale;
  gl_Position = vec4(p, 0.0, 1.0);
  gl_PointSize = colour.a > 0.0 ? size : 0.0;
  v_colour = colour;
}`;

const FS = `#version 300 es
precision mediump float;
in vec4 v_colour;
uniform float ring;   // 1: draw an outline ring (selected points)
out vec4 outColour;
void main() {
  vec2 d = gl_PointCoord * 2.0 - 1.0;
  float r = dot(d, d);
  if (r > 1.0 || v_colour.a == 0.0) discard;
  if (ring > 0.5 && r > 0.45) { outColour = vec4(0.07, 0.07, 0.07, 1.0); return; }
  outColour = vec4(v_colour.rgb, v_colour.a);
}`;

let softwareCache: boolean | null = null;

/** Whether this page's WebGL2 is hardware (probed once a page, on a throwaway context). */
function hardwareWebgl(): boolean {
  const force = (globalThis as { __lsPoints?: string }).__lsPoints;
  if (force === "webgl") return true;
  if (force === "raster") return false;
  if (softwareCache === null) {
    const gl = document.createElement("canvas").getContext("webgl2");
    softwareCache = !gl || softwareGl(gl);
    gl?.getExtension("WEBGL_lose_context")?.loseContext();
  }
  return !softwareCache;
}

interface Layer {
  pos: WebGLBuffer;
  colour: WebGLBuffer;
  vao: WebGLVertexArrayObject;
  count: number;
}

export class PointRenderer {
  readonly canvas: HTMLCanvasElement;
  readonly webgl: boolean;
  private gl: WebGL2RenderingContext | null = null;
  private ctx2d: CanvasRenderingContext2D | null = null;
  private image: ImageData | null = null;
  private pixels: Uint32Array = new Uint32Array(0);
  private program: WebGLProgram | null = null;
  private main: Layer | null = null;
  private sel: Layer | null = null;
  private xy: ArrayLike<number> = new Float32Array(0);
  private colours: Uint8Array = new Uint8Array(0);
  private selXy: Float32Array = new Float32Array(0);
  private selColours: Uint8Array = new Uint8Array(0);
  private ox = 0;
  private oy = 0;
  private dpr = 1;
  /** Milliseconds of the last draw calls (CPU side, up to the GL flush). */
  readonly drawTimes: number[] = [];

  constructor() {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "ls-proj-canvas";
    const gl = hardwareWebgl()
      ? this.canvas.getContext("webgl2", { antialias: false, premultipliedAlpha: false })
      : null;
    if (gl) {
      this.gl = gl;
      this.program = this.compile(gl);
      this.main = this.layer(gl);
      this.sel = this.layer(gl);
    } else {
      this.ctx2d = this.canvas.getContext("2d");
    }
    this.webgl = Boolean(gl);
  }

  private compile(gl: WebGL2RenderingContext): WebGLProgram {
    const shader = (type: number, src: string) => {
      const s = gl.createShader(type) as WebGLShader;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS))
        throw new Error(`layerscope point shader: ${gl.getShaderInfoLog(s)}`);
      return s;
    };
    const p = gl.createProgram() as WebGLProgram;
    gl.attachShader(p, shader(gl.VERTEX_SHADER, VS));
    gl.attachShader(p, shader(gl.FRAGMENT_SHADER, FS));
    gl.bindAttribLocation(p, 0, "pos");
    gl.bindAttribLocation(p, 1, "colour");
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS))
      throw new Error(`layerscope point program: ${gl.getProgramInfoLog(p)}`);
    return p;
  }

  private layer(gl: WebGL2RenderingContext): Layer {
    const vao = gl.createVertexArray() as WebGLVertexArrayObject;
    const pos = gl.createBuffer() as WebGLBuffer;
    const colour = gl.createBuffer() as WebGLBuffer;
    gl.bindVertexArray(vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, pos);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, colour);
    gl.enableVertexAttribArray(1);
    gl.vertexAttribPointer(1, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.bindVertexArray(null);
    return { vao, pos, colour, count: 0 };
  }

  resize(width: number, height: number): void {
    this.dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(width * this.dpr));
    const h = Math.max(1, Math.round(height * this.dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
  }

  /** New positions (interleaved, data units) around origin (ox, oy). */
  setPositions(xy: ArrayLike<number>, ox = 0, oy = 0): void {
    this.xy = xy;
    this.ox = ox;
    this.oy = oy;
    if (this.gl && this.main) {
      const gl = this.gl;
      gl.bindBuffer(gl.ARRAY_BUFFER, this.main.pos);
      gl.bufferData(gl.ARRAY_BUFFER, recentred(xy, ox, oy), gl.DYNAMIC_DRAW);
      this.main.count = xy.length >> 1;
    }
  }

  setColours(rgba: Uint8Array): void {
    this.colours = rgba;
    if (this.gl && this.main) {
      const gl = this.gl;
      gl.bindBuffer(gl.ARRAY_BUFFER, this.main.colour);
      gl.bufferData(gl.ARRAY_BUFFER, rgba, gl.DYNAMIC_DRAW);
    }
  }

  /** Points drawn on top with an outline: positions and colours of the selected points. */
  setSelection(xy: Float32Array, rgba: Uint8Array): void {
    this.selXy = xy;
    this.selColours = rgba;
    if (this.gl && this.sel) {
      const gl = this.gl;
      gl.bindBuffer(gl.ARRAY_BUFFER, this.sel.pos);
      gl.bufferData(gl.ARRAY_BUFFER, recentred(xy, this.ox, this.oy), gl.DYNAMIC_DRAW);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.sel.colour);
      gl.bufferData(gl.ARRAY_BUFFER, rgba, gl.DYNAMIC_DRAW);
      this.sel.count = xy.length >> 1;
    }
  }

  draw(v: ViewBox, size: number, dim: boolean): void {
    const t0 = performance.now();
    if (this.gl && needsRebase(v, this.ox, this.oy)) {
      const sel = this.selXy;
      this.setPositions(this.xy, v.cx, v.cy);
      if (this.sel && this.gl) {
        this.gl.bindBuffer(this.gl.ARRAY_BUFFER, this.sel.pos);
        this.gl.bufferData(this.gl.ARRAY_BUFFER, recentred(sel, v.cx, v.cy), this.gl.DYNAMIC_DRAW);
      }
    }
    if (this.gl && this.program && this.main && this.sel) this.drawGl(this.gl, v, size, dim);
    else this.drawRaster(v, size, dim);
    this.drawTimes.push(performance.now() - t0);
    if (this.drawTimes.length > 240) this.drawTimes.shift();
  }

  private drawGl(gl: WebGL2RenderingContext, v: ViewBox, size: number, dim: boolean): void {
    const program = this.program as WebGLProgram;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.useProgram(program);
    const u = (name: string) => gl.getUniformLocation(program, name);
    gl.uniform2f(u("shift"), v.cx - this.ox, v.cy - this.oy);
    gl.uniform2f(u("scale"), (2 * v.k) / v.width, (2 * v.k) / v.height);
    gl.uniform1f(u("size"), size * 2 * this.dpr);
    gl.uniform1f(u("ring"), 0);
    gl.bindVertexArray((this.main as Layer).vao);
    if (dim) gl.blendColor(0, 0, 0, 0.25);
    if (dim) gl.blendFunc(gl.CONSTANT_ALPHA, gl.ONE_MINUS_CONSTANT_ALPHA);
    gl.drawArrays(gl.POINTS, 0, (this.main as Layer).count);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    const sel = this.sel as Layer;
    if (sel.count) {
      gl.uniform1f(u("ring"), 1);
      gl.uniform1f(u("size"), (size + 2) * 2 * this.dpr);
      gl.bindVertexArray(sel.vao);
      gl.drawArrays(gl.POINTS, 0, sel.count);
    }
    gl.bindVertexArray(null);
    gl.flush();
  }

  private drawRaster(v: ViewBox, size: number, dim: boolean): void {
    const ctx = this.ctx2d;
    if (!ctx) return;
    const w = this.canvas.width;
    const h = this.canvas.height;
    if (!this.image || this.image.width !== w || this.image.height !== h) {
      this.image = ctx.createImageData(w, h);
      this.pixels = new Uint32Array(this.image.data.buffer);
    }
    const px = this.pixels;
    px.fill(0);
    const d = size * 2 * this.dpr;
    splat(px, w, h, v, this.dpr, this.xy, words(this.colours), {
      diameter: d,
      alpha: dim ? 0.25 : 1,
    });
    const n = this.selXy.length >> 1;
    if (n) {
      // an outline ring: a dark disc, the point's colour inside it (as the GL ring shader)
      const outer = Math.max(3, Math.round((size + 2) * 2 * this.dpr));
      const inner = Math.max(1, Math.round(outer * 0.67));
      const sel = words(this.selColours);
      const dark = new Uint32Array(n).fill(word(18, 18, 18, 255));
      splat(px, w, h, v, this.dpr, this.selXy, dark, { diameter: outer });
      splat(px, w, h, v, this.dpr, this.selXy, sel, { diameter: inner });
    }
    ctx.putImageData(this.image, 0, 0);
  }

  dispose(): void {
    const gl = this.gl;
    if (!gl) return;
    for (const l of [this.main, this.sel]) {
      if (!l) continue;
      gl.deleteBuffer(l.pos);
      gl.deleteBuffer(l.colour);
      gl.deleteVertexArray(l.vao);
    }
    if (this.program) gl.deleteProgram(this.program);
  }
}
