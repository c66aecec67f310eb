// A stand-in for an anywidget model in unit tests: records what the view sends, replays what
// the kernel would answer.
export class FakeModel {
  sent: Record<string, unknown>[] = [];
  private handlers: ((msg: unknown, buffers: DataView[]) => void)[] = [];
  send(content: unknown) {
    this.sent.push(content as Record<string, unknown>);
  }
  on(_name: string, cb: (msg: unknown, buffers: DataView[]) => void) {
    this.handlers.push(cb);
  }
  off(_name: string, cb: (msg: unknown, buffers: DataView[]) => void) {
    this.handlers = this.handlers.filter((h) => h !== cb);
  }
  reply(msg: unknown, buffers: DataView[] = []) {
    for (const h of [...this.handlers]) h(msg, buffers);
  }
}
