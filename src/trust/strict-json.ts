/**
 * A JSON reader that keeps what `JSON.parse` throws away: a key given twice in one object is an error, as in
 * containers/image's paranoid reader, so a policy cannot say `"type": "reject"` and then quietly override it.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Parses `text`; throws an Error whose message names the offset and what was wrong. */
export function parseStrictJson(text: string): JsonValue {
  const p = new Reader(text);
  p.space();
  const v = p.value();
  p.space();
  if (p.i !== text.length) p.fail('unexpected data after the JSON value');
  return v;
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const STRING_RE = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class Reader {
  i = 0;
  constructor(private readonly s: string) {}

  fail(what: string): never {
    throw new Error(`${what} at offset ${this.i}`);
  }

  space(): void {
    while (this.i < this.s.length && ' \t\n\r'.includes(this.s[this.i]!)) this.i++;
  }

  value(): JsonValue {
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.fail(c === undefined ? 'unexpected end of JSON input' : `unexpected character ${JSON.stringify(c)}`);
  }

  object(): JsonObject {
    const out: JsonObject = Object.create(null) as JsonObject;
    this.members('}', () => {
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const key = this.string();
      if (Object.prototype.hasOwnProperty.call(out, key)) this.fail(`duplicate key ${JSON.stringify(key)}`);
      this.space();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      this.space();
      out[key] = this.value();
    });
    return out;
  }

  array(): JsonValue[] {
    const out: JsonValue[] = [];
    this.members(']', () => out.push(this.value()));
    return out;
  }

  /** The comma-separated members of an object or array, from its opening bracket through `close`. */
  private members(close: '}' | ']', member: () => void): void {
    this.i++;
    this.space();
    if (this.s[this.i] === close) {
      this.i++;
      return;
    }
    for (;;) {
      this.space();
      member();
      this.space();
      const c = this.s[this.i++];
      if (c === close) return;
      if (c !== ',') this.fail(`expected "," or "${close}"`);
    }
  }

  string(): string {
    STRING_RE.lastIndex = this.i;
    const m = STRING_RE.exec(this.s);
    if (!m) this.fail('malformed string');
    this.i += m[0].length;
    return JSON.parse(m[0]) as string;
  }

  number(): number {
    NUMBER_RE.lastIndex = this.i;
    const m = NUMBER_RE.exec(this.s);
    if (!m) this.fail('malformed number');
    this.i += m[0].length;
    return Number(m[0]);
  }
}
