/**
 * One-line progress on a terminal (stderr, rewritten in place); silent when stderr is not a TTY,
 * so logs and pipes stay clean.
 */
export class ProgressLine {
  readonly #enabled: boolean;
  #last = '';

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#enabled = Boolean(stream.isTTY);
    this.stream = stream;
  }

  readonly stream: NodeJS.WriteStream;

  update(text: string): void {
    if (!this.#enabled || text === this.#last) return;
    this.#last = text;
    const width = this.stream.columns ?? 100;
    this.stream.write(`\r${text.slice(0, width - 1).padEnd(Math.min(this.#last.length, width - 1))}\x1b[K`);
  }

  clear(): void {
    if (!this.#enabled || this.#last === '') return;
    this.stream.write('\r\x1b[K');
    this.#last = '';
  }
}
