/**
 * A TOML 1.0 reader, sized for containers' configuration files (storage.conf, registries.conf, containers.conf).
 *
 * Values map to: strings → string, integers → number (bigint when beyond ±2^53−1, error beyond 64 bits),
 * floats → number, booleans → boolean, arrays → array, tables → plain objects, dates and times → their string form
 * as written (with a `T` or space separator kept as is). Every syntax or semantic error (duplicate keys, redefined
 * tables, appending to static arrays, ...) raises CarrierError('CARRIER_INVALID_CONFIG', `${file}:${line}: ...`).
 */
import { CarrierError } from './errors.js';

const MAX_DEPTH = 1000;

export type TomlTable = Record<string, unknown>;

/** How a table came to exist; decides what later headers and dotted keys may do with it (TOML 1.0 §Table). */
type TableKind = 'implicit' | 'header' | 'dotted' | 'inline';

const BARE_KEY_CHAR = /[A-Za-z0-9_-]/;
const MAX_INT64 = 9223372036854775807n;
const MIN_INT64 = -9223372036854775808n;

export function parseToml(text: string, file = '<toml>'): TomlTable {
  return new Parser(text, file).parseDocument();
}

class Parser {
  private pos = 0;
  private readonly kinds = new WeakMap<object, TableKind>();
  /** Arrays created by `[[...]]` headers; only these may be appended to by later headers. */
  private readonly tableArrays = new WeakSet<unknown[]>();

  constructor(
    private readonly src: string,
    private readonly file: string,
  ) {}

  // --- errors and low-level scanning ----------------------------------------------------------------------------

  private fail(message: string, at: number = this.pos): never {
    let line = 1;
    const end = Math.min(at, this.src.length);
    for (let i = 0; i < end; i++) if (this.src.charCodeAt(i) === 10) line++;
    throw new CarrierError('CARRIER_INVALID_CONFIG', `${this.file}:${line}: ${message}`, { path: this.file });
  }

  private peek(offset = 0): string {
    return this.src[this.pos + offset] ?? '';
  }

  private eof(): boolean {
    return this.pos >= this.src.length;
  }

  private startsWith(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  private skipWs(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  private skipComment(): void {
    if (this.peek() !== '#') return;
    this.pos++;
    while (!this.eof()) {
      const c = this.src.charCodeAt(this.pos);
      if (c === 10) return;
      if (c === 13 && this.peek(1) === '\n') return;
      if ((c < 0x20 && c !== 9) || c === 0x7f) this.fail('control character in comment');
      this.pos++;
    }
  }

  /** Consumes a newline (LF or CRLF) if one is here. */
  private newline(): boolean {
    if (this.peek() === '\n') {
      this.pos++;
      return true;
    }
    if (this.peek() === '\r' && this.peek(1) === '\n') {
      this.pos += 2;
      return true;
    }
    return false;
  }

  /** Whitespace, comments and newlines (inside arrays). */
  private skipWsCommentsNewlines(): void {
    for (;;) {
      this.skipWs();
      this.skipComment();
      if (!this.newline()) return;
    }
  }

  /** After a key/value pair or header: optional whitespace and comment, then a newline or the end. */
  private endOfLine(): void {
    this.skipWs();
    this.skipComment();
    if (this.eof() || this.newline()) return;
    this.fail(`expected end of line, found ${describe(this.peek())}`);
  }

  // --- document -------------------------------------------------------------------------------------------------

  parseDocument(): TomlTable {
    const root: TomlTable = {};
    this.kinds.set(root, 'header');
    let current = root;
    if (this.src.charCodeAt(0) === 0xfeff) this.pos = 1;
    while (!this.eof()) {
      this.skipWs();
      if (this.eof()) break;
      if (this.newline()) continue;
      const c = this.peek();
      if (c === '#') {
        this.skipComment();
        continue;
      }
      if (c === '[') {
        current = this.peek(1) === '[' ? this.arrayTableHeader(root) : this.tableHeader(root);
      } else {
        this.keyValue(current, 'dotted');
      }
      this.endOfLine();
    }
    return root;
  }

  private tableHeader(root: TomlTable): TomlTable {
    const start = this.pos;
    this.pos++; // [
    this.skipWs();
    const keys = this.key();
    this.skipWs();
    if (this.peek() !== ']') this.fail(`expected ']' to close table header, found ${describe(this.peek())}`);
    this.pos++;
    const parent = this.walkHeader(root, keys.slice(0, -1), start);
    const last = keys[keys.length - 1]!;
    const name = keys.join('.');
    if (!Object.hasOwn(parent, last)) {
      const table: TomlTable = {};
      this.kinds.set(table, 'header');
      setOwn(parent, last, table);
      return table;
    }
    const existing = parent[last];
    if (!isTable(existing)) this.fail(`cannot define table [${name}]: key already has a value`, start);
    const kind = this.kinds.get(existing);
    if (kind === 'implicit') {
      this.kinds.set(existing, 'header');
      return existing;
    }
    if (kind === 'dotted') this.fail(`cannot define table [${name}]: already defined by dotted keys`, start);
    if (kind === 'inline') this.fail(`cannot define table [${name}]: already defined as an inline table`, start);
    return this.fail(`duplicate table [${name}]`, start);
  }

  private arrayTableHeader(root: TomlTable): TomlTable {
    const start = this.pos;
    this.pos += 2; // [[
    this.skipWs();
    const keys = this.key();
    this.skipWs();
    if (!this.startsWith(']]')) this.fail(`expected ']]' to close array-of-tables header, found ${describe(this.peek())}`);
    this.pos += 2;
    const parent = this.walkHeader(root, keys.slice(0, -1), start);
    const last = keys[keys.length - 1]!;
    const name = keys.join('.');
    const table: TomlTable = {};
    this.kinds.set(table, 'header');
    if (!Object.hasOwn(parent, last)) {
      const arr: unknown[] = [table];
      this.tableArrays.add(arr);
      setOwn(parent, last, arr);
      return table;
    }
    const existing = parent[last];
    if (!Array.isArray(existing) || !this.tableArrays.has(existing)) {
      this.fail(`cannot define [[${name}]]: key is already defined and is not an array of tables`, start);
    }
    existing.push(table);
    return table;
  }

  /** Follows header key segments, creating implicit tables; arrays of tables resolve to their last element. */
  private walkHeader(root: TomlTable, keys: string[], at: number): TomlTable {
    let table = root;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (!Object.hasOwn(table, k)) {
        const child: TomlTable = {};
        this.kinds.set(child, 'implicit');
        setOwn(table, k, child);
        table = child;
        continue;
      }
      const v = table[k];
      const where = keys.slice(0, i + 1).join('.');
      if (Array.isArray(v)) {
        if (!this.tableArrays.has(v)) this.fail(`cannot extend ${where}: it is a static array`, at);
        table = v[v.length - 1] as TomlTable;
      } else if (isTable(v)) {
        if (this.kinds.get(v) === 'inline') this.fail(`cannot extend ${where}: inline tables are immutable`, at);
        table = v;
      } else {
        this.fail(`cannot use ${where} as a table: it already has a value`, at);
      }
    }
    return table;
  }

  /** `key = value` into `table`; intermediate tables from dotted keys get `dottedKind`. */
  private keyValue(table: TomlTable, dottedKind: TableKind): void {
    const start = this.pos;
    const keys = this.key();
    this.skipWs();
    if (this.peek() !== '=') this.fail(`expected '=' after key, found ${describe(this.peek())}`);
    this.pos++;
    this.skipWs();
    const value = this.value();
    let t = table;
    for (let i = 0; i < keys.length - 1; i++) {
      const k = keys[i]!;
      if (!Object.hasOwn(t, k)) {
        const child: TomlTable = {};
        this.kinds.set(child, dottedKind);
        setOwn(t, k, child);
        t = child;
        continue;
      }
      const v = t[k];
      if (!isTable(v) || this.kinds.get(v) !== dottedKind) {
        this.fail(`cannot add key ${keys.join('.')}: ${keys.slice(0, i + 1).join('.')} is already defined`, start);
      }
      t = v;
    }
    const last = keys[keys.length - 1]!;
    if (Object.hasOwn(t, last)) this.fail(`duplicate key ${keys.join('.')}`, start);
    setOwn(t, last, value);
  }

  // --- keys -----------------------------------------------------------------------------------------------------

  private key(): string[] {
    const keys = [this.simpleKey()];
    for (;;) {
      const save = this.pos;
      this.skipWs();
      if (this.peek() !== '.') {
        this.pos = save;
        return keys;
      }
      this.pos++;
      this.skipWs();
      keys.push(this.simpleKey());
    }
  }

  private simpleKey(): string {
    const c = this.peek();
    if (c === '"') {
      if (this.startsWith('"""')) this.fail('multi-line strings cannot be keys');
      return this.basicString();
    }
    if (c === "'") {
      if (this.startsWith("'''")) this.fail('multi-line strings cannot be keys');
      return this.literalString();
    }
    const start = this.pos;
    while (BARE_KEY_CHAR.test(this.peek())) this.pos++;
    if (this.pos === start) this.fail(`expected a key, found ${describe(c)}`);
    return this.src.slice(start, this.pos);
  }

  // --- values ---------------------------------------------------------------------------------------------------

  /** Current nesting of arrays and inline tables. */
  private depth = 0;

  private value(): unknown {
    const c = this.peek();
    if (c === '"') return this.startsWith('"""') ? this.multilineBasicString() : this.basicString();
    if (c === "'") return this.startsWith("'''") ? this.multilineLiteralString() : this.literalString();
    if (c === '[' || c === '{') {
      // bounded so a hostile file gets an error, not a stack overflow
      if (++this.depth > MAX_DEPTH) this.fail(`arrays and inline tables nest deeper than ${MAX_DEPTH} levels`);
      try {
        return c === '[' ? this.array() : this.inlineTable();
      } finally {
        this.depth--;
      }
    }
    if (this.eof() || c === '\n' || c === '\r' || c === '#') this.fail('missing value');
    return this.scalar();
  }

  private checkChar(code: number, multiline: boolean): void {
    if (code === 9) return;
    if (multiline && code === 10) return;
    if (code < 0x20 || code === 0x7f) this.fail(`control character U+${code.toString(16).padStart(4, '0')} in string`);
  }

  private basicString(): string {
    this.pos++; // "
    let out = '';
    for (;;) {
      if (this.eof()) this.fail('unterminated string');
      const c = this.peek();
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === '\\') {
        out += this.escape();
        continue;
      }
      if (c === '\n' || c === '\r') this.fail('newline in single-line string');
      this.checkChar(this.src.charCodeAt(this.pos), false);
      out += c;
      this.pos++;
    }
  }

  private escape(): string {
    const at = this.pos;
    this.pos++; // backslash
    const c = this.peek();
    this.pos++;
    switch (c) {
      case 'b':
        return '\b';
      case 't':
        return '\t';
      case 'n':
        return '\n';
      case 'f':
        return '\f';
      case 'r':
        return '\r';
      case '"':
        return '"';
      case '\\':
        return '\\';
      case 'u':
      case 'U': {
        const len = c === 'u' ? 4 : 8;
        const hex = this.src.slice(this.pos, this.pos + len);
        if (hex.length !== len || !/^[0-9A-Fa-f]+$/.test(hex)) this.fail(`invalid \\${c} escape`, at);
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.fail(`\\${c}${hex} is not a Unicode scalar value`, at);
        this.pos += len;
        return String.fromCodePoint(cp);
      }
      default:
        return this.fail(`invalid escape sequence \\${c}`, at);
    }
  }

  private literalString(): string {
    this.pos++; // '
    const start = this.pos;
    for (;;) {
      if (this.eof()) this.fail('unterminated string');
      const c = this.peek();
      if (c === "'") {
        const s = this.src.slice(start, this.pos);
        this.pos++;
        return s;
      }
      if (c === '\n' || c === '\r') this.fail('newline in single-line string');
      this.checkChar(this.src.charCodeAt(this.pos), false);
      this.pos++;
    }
  }

  /** At most two quote characters may sit right before the closing delimiter and belong to the content. */
  private closingQuotes(q: string): number {
    let n = 0;
    while (this.peek(n) === q) n++;
    return n;
  }

  private multilineBasicString(): string {
    this.pos += 3;
    this.newline(); // a newline right after the opening delimiter is trimmed
    let out = '';
    for (;;) {
      if (this.eof()) this.fail('unterminated multi-line string');
      const c = this.peek();
      if (c === '"' && this.startsWith('"""')) {
        const n = this.closingQuotes('"');
        if (n > 5) this.fail('too many quotes at the end of a multi-line string');
        out += '"'.repeat(n - 3);
        this.pos += n;
        return out;
      }
      if (c === '\\') {
        // Line-ending backslash: swallow whitespace and newlines up to the next other character.
        let j = this.pos + 1;
        while (this.src[j] === ' ' || this.src[j] === '\t') j++;
        if (this.src[j] === '\n' || (this.src[j] === '\r' && this.src[j + 1] === '\n')) {
          this.pos = j;
          for (;;) {
            this.skipWs();
            if (!this.newline()) break;
          }
          continue;
        }
        out += this.escape();
        continue;
      }
      if (c === '\r') {
        if (this.peek(1) !== '\n') this.fail('bare carriage return in string');
        out += '\n';
        this.pos += 2;
        continue;
      }
      this.checkChar(this.src.charCodeAt(this.pos), true);
      out += c;
      this.pos++;
    }
  }

  private multilineLiteralString(): string {
    this.pos += 3;
    this.newline();
    let out = '';
    for (;;) {
      if (this.eof()) this.fail('unterminated multi-line string');
      const c = this.peek();
      if (c === "'" && this.startsWith("'''")) {
        const n = this.closingQuotes("'");
        if (n > 5) this.fail('too many quotes at the end of a multi-line string');
        out += "'".repeat(n - 3);
        this.pos += n;
        return out;
      }
      if (c === '\r') {
        if (this.peek(1) !== '\n') this.fail('bare carriage return in string');
        out += '\n';
        this.pos += 2;
        continue;
      }
      this.checkChar(this.src.charCodeAt(this.pos), true);
      out += c;
      this.pos++;
    }
  }

  private array(): unknown[] {
    this.pos++; // [
    const out: unknown[] = [];
    for (;;) {
      this.skipWsCommentsNewlines();
      if (this.peek() === ']') {
        this.pos++;
        return out;
      }
      if (this.eof()) this.fail('unterminated array');
      out.push(this.value());
      this.skipWsCommentsNewlines();
      const c = this.peek();
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return out;
      }
      this.fail(`expected ',' or ']' in array, found ${describe(c)}`);
    }
  }

  private inlineTable(): TomlTable {
    this.pos++; // {
    const table: TomlTable = {};
    this.kinds.set(table, 'inline');
    this.skipWs();
    if (this.peek() === '}') {
      this.pos++;
      return table;
    }
    for (;;) {
      this.skipWs();
      if (this.peek() === '\n' || this.peek() === '\r') this.fail('newline inside an inline table');
      // Dotted keys inside an inline table build sub-tables of kind 'dotted'; freeze them all afterwards.
      this.keyValue(table, 'dotted');
      this.skipWs();
      const c = this.peek();
      if (c === ',') {
        this.pos++;
        this.skipWs();
        if (this.peek() === '}') this.fail('trailing comma in inline table');
        continue;
      }
      if (c === '}') {
        this.pos++;
        this.freeze(table);
        return table;
      }
      this.fail(`expected ',' or '}' in inline table, found ${describe(c)}`);
    }
  }

  private freeze(table: TomlTable): void {
    this.kinds.set(table, 'inline');
    for (const v of Object.values(table)) if (isTable(v) && this.kinds.get(v) === 'dotted') this.freeze(v);
  }

  // --- scalars --------------------------------------------------------------------------------------------------

  private scalar(): unknown {
    const start = this.pos;
    // Dates may use a space between date and time: "1979-05-27 07:32:00Z".
    const dateTime = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?/.exec(
      this.src.slice(start, start + 64),
    );
    if (dateTime) {
      this.pos += dateTime[0].length;
      this.validateDateTime(dateTime[0], start);
      return dateTime[0];
    }
    while (!this.eof() && /[0-9A-Za-z_+\-.:]/.test(this.peek())) this.pos++;
    const tok = this.src.slice(start, this.pos);
    if (tok === '') this.fail(`unexpected ${describe(this.peek())}`);
    if (tok === 'true') return true;
    if (tok === 'false') return false;
    if (/^[+-]?inf$/.test(tok)) return tok.startsWith('-') ? -Infinity : Infinity;
    if (/^[+-]?nan$/.test(tok)) return NaN;
    if (/^\d{4}-\d{2}-\d{2}$/.test(tok)) {
      this.validateDateTime(tok, start);
      return tok;
    }
    if (/^\d{2}:\d{2}:\d{2}(?:\.\d+)?$/.test(tok)) {
      this.validateDateTime(tok, start);
      return tok;
    }
    if (/^0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*$/.test(tok)) return this.integer(BigInt(tok.replace(/_/g, '')), start);
    if (/^0o[0-7](?:_?[0-7])*$/.test(tok)) return this.integer(BigInt(tok.replace(/_/g, '')), start);
    if (/^0b[01](?:_?[01])*$/.test(tok)) return this.integer(BigInt(tok.replace(/_/g, '')), start);
    if (/^[+-]?(?:0|[1-9](?:_?\d)*)$/.test(tok)) return this.integer(BigInt(tok.replace(/_/g, '')), start);
    if (/^[+-]?(?:0|[1-9](?:_?\d)*)(?:\.\d(?:_?\d)*)?(?:[eE][+-]?\d(?:_?\d)*)?$/.test(tok)) {
      return Number(tok.replace(/_/g, ''));
    }
    return this.fail(`invalid value ${JSON.stringify(tok)}`, start);
  }

  private integer(n: bigint, at: number): number | bigint {
    if (n > MAX_INT64 || n < MIN_INT64) this.fail('integer does not fit in 64 bits', at);
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  }

  private validateDateTime(s: string, at: number): void {
    const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
    if (date) {
      const y = Number(date[1]);
      const m = Number(date[2]);
      const d = Number(date[3]);
      const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
      const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
      if (days === undefined || d < 1 || d > days) this.fail(`invalid date ${s}`, at);
    }
    const time = /(\d{2}):(\d{2}):(\d{2})/.exec(date ? s.slice(11) : s);
    if (time && (Number(time[1]) > 23 || Number(time[2]) > 59 || Number(time[3]) > 59)) this.fail(`invalid time ${s}`, at);
    const offset = /[+-](\d{2}):(\d{2})$/.exec(date ? s.slice(19) : '');
    if (offset && (Number(offset[1]) > 23 || Number(offset[2]) > 59)) this.fail(`invalid offset ${s}`, at);
  }
}

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own data property even for keys like `__proto__`. */
function setOwn(obj: TomlTable, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function describe(c: string): string {
  if (c === '') return 'end of input';
  if (c === '\n' || c === '\r') return 'end of line';
  return JSON.stringify(c);
}
