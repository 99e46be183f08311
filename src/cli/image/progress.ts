// Rendering pull progress: per-layer bars redrawn in place on a terminal, plain lines otherwise. Only the CLI knows
// about terminals; the library reports typed events (PullEvent).
import type { PullEvent } from '../../index.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 12345678 → "11.8MiB", as podman's progress bars print sizes. */
export function binarySize(bytes: number): string {
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v}${UNITS[0]}` : `${v.toFixed(1)}${UNITS[u]}`;
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

interface Row {
  digest: string;
  text: string;
}

export class PullProgress {
  private rows: Row[] = [];
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Layers pulled partially: what is to be fetched, and what the store already had. */
  private partial = new Map<string, { toFetch: number; skipped: number }>();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty = Boolean(out.isTTY),
  ) {}

  handle = (e: PullEvent): void => {
    switch (e.type) {
      case 'resolved':
        this.line(`Getting image source signatures`);
        break;
      case 'layer': {
        const text =
          e.state === 'exists'
            ? `Copying blob ${short(e.digest)} skipped: already exists`
            : e.state === 'cached'
              ? `Copying blob ${short(e.digest)} from the blob cache`
              : e.state === 'downloading'
                ? `Copying blob ${short(e.digest)} ${binarySize(0)} / ${binarySize(e.size)}`
                : `Copying blob ${short(e.digest)} done`;
        if (this.tty) this.set(e.digest, text);
        else if (e.state !== 'downloading') this.line(text);
        else this.line(`Copying blob ${e.digest}`);
        break;
      }
      case 'partial':
        this.partial.set(e.digest, { toFetch: e.toFetch, skipped: e.skipped });
        if (!this.tty) this.line(`Copying blob ${e.digest} partially: fetching ${binarySize(e.toFetch)}, skipping ${binarySize(e.skipped)} the store has`);
        break;
      case 'progress': {
        const p = this.partial.get(e.digest);
        const text = p
          ? `Copying blob ${short(e.digest)} fetched ${binarySize(e.bytes)} / ${binarySize(p.toFetch)}, skipped ${binarySize(p.skipped)}`
          : `Copying blob ${short(e.digest)} ${binarySize(e.bytes)} / ${binarySize(e.size)}`;
        if (this.tty) this.set(e.digest, text);
        break;
      }
      case 'committed':
        this.flush();
        this.line('Writing manifest to image destination');
        break;
    }
  };

  /** Final redraw; call when the pull ends either way. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.tty) this.draw();
  }

  private line(text: string): void {
    if (this.tty) {
      this.flush();
      this.out.write(`${text}\n`);
      this.rows = [];
      this.drawn = 0;
    } else {
      this.out.write(`${text}\n`);
    }
  }

  private set(digest: string, text: string): void {
    const row = this.rows.find((r) => r.digest === digest);
    if (row) row.text = text;
    else this.rows.push({ digest, text });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, 50);
  }

  private draw(): void {
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const r of this.rows) s += `\r\x1b[2K${r.text}\n`;
    this.drawn = this.rows.length;
    this.out.write(s);
  }
}
