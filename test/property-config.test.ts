// Property tests (fast-check) for Carrier's use of smol-toml behind storage.conf / registries.conf:
// arbitrary text gives a table or CARRIER_INVALID_CONFIG ('<file>:<line>: ...'), never another exception and never
// a hang; TOML generated from a model (every value kind and string style, header tables, arrays of tables, inline
// tables, keys that name Object.prototype members) parses back to exactly the model.
//
// Runs per property: CARRIER_PROPERTY_RUNS (default below); replay with CARRIER_PROPERTY_SEED=<seed>.
import { describe, it, expect, vi } from 'vitest';
import fc from 'fast-check';
import { CarrierError } from '../src/errors.js';
import { TomlDate } from 'smol-toml';
import { MAX_TOML_DEPTH, parseToml } from '../src/config-toml.js';

const RUNS = Number(process.env.CARRIER_PROPERTY_RUNS ?? 1000);
// Generous: a property's wall time grows with RUNS and machine load. No call is timed (a loaded machine made a fast
// parse look slow); a parser that hangs or goes quadratic on a generated document runs into this timeout instead.
vi.setConfig({ testTimeout: 120_000 });
const SEED = process.env.CARRIER_PROPERTY_SEED === undefined ? undefined : Number(process.env.CARRIER_PROPERTY_SEED);
const params = (numRuns = RUNS): fc.Parameters<unknown> => (SEED === undefined ? { numRuns } : { numRuns, seed: SEED });

/** parseToml on `text`: the table, or a CarrierError CARRIER_INVALID_CONFIG located in 'p.toml'; else the test fails. */
function parse(text: string): { ok: true; value: Record<string, unknown> } | { ok: false; error: CarrierError } {
  let r: { ok: true; value: Record<string, unknown> } | { ok: false; error: CarrierError };
  try {
    r = { ok: true, value: parseToml(text, 'p.toml') };
  } catch (err) {
    if (!(err instanceof CarrierError)) throw new Error(`threw something other than a CarrierError: ${String(err)}`, { cause: err });
    expect(err.code).toBe('CARRIER_INVALID_CONFIG');
    expect(err.message).toMatch(/^p\.toml:\d+: /);
    const line = Number(/^p\.toml:(\d+):/.exec(err.message)![1]);
    expect(line).toBeGreaterThanOrEqual(1);
    expect(line).toBeLessThanOrEqual(text.split('\n').length);
    r = { ok: false, error: err };
  }
  return r;
}

// ---- a model of TOML documents, its serialisation, and the JS value it must parse to ------------------------------

type Value =
  | { t: 'str'; v: string; style: 'basic' | 'literal' | 'mlbasic' | 'mlliteral' }
  | { t: 'int'; v: bigint; style: 'dec' | 'plus' | 'under' | 'hex' | 'oct' | 'bin' }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'date'; v: string }
  | { t: 'array'; items: Value[] }
  | Table
  | { t: 'tarray'; tables: Table[]; inline: boolean };
type Table = { t: 'table'; entries: Array<[string, Value]>; inline: boolean };

const MAX_INT64 = 2n ** 63n - 1n;
const MIN_INT64 = -(2n ** 63n);

function expected(v: Value): unknown {
  switch (v.t) {
    case 'str':
    case 'bool':
    case 'float':
      return v.v;
    case 'date':
      return new TomlDate(v.v);
    case 'int':
      return v.v >= BigInt(Number.MIN_SAFE_INTEGER) && v.v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.v) : v.v;
    case 'array':
      return v.items.map(expected);
    case 'tarray':
      return v.tables.map(expected);
    case 'table': {
      const o: Record<string, unknown> = {};
      for (const [k, x] of v.entries) Object.defineProperty(o, k, { value: expected(x), enumerable: true, writable: true, configurable: true });
      return o;
    }
  }
}

function key(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : basic(k);
}

function escapeChar(c: string): string {
  const code = c.codePointAt(0)!;
  if (c === '"') return '\\"';
  if (c === '\\') return '\\\\';
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (code < 0x20 || code === 0x7f) return `\\u${code.toString(16).padStart(4, '0')}`;
  return c;
}

function basic(s: string): string {
  return `"${Array.from(s, escapeChar).join('')}"`;
}

const hasControl = (s: string, allowNewline: boolean): boolean =>
  Array.from(s).some((c) => {
    const code = c.codePointAt(0)!;
    return (code < 0x20 && code !== 9 && !(allowNewline && code === 10)) || code === 0x7f;
  });

function str(v: Extract<Value, { t: 'str' }>): string {
  const s = v.v;
  if (v.style === 'literal' && !s.includes("'") && !hasControl(s, false)) return `'${s}'`;
  if (v.style === 'mlliteral' && !s.includes("'") && !hasControl(s, true)) return `'''\n${s}'''`; // first newline is trimmed
  if (v.style === 'mlbasic') {
    const body = Array.from(s, (c) => (c === '\n' ? '\n' : escapeChar(c))).join('');
    return `"""\n${body}"""`;
  }
  return basic(s);
}

function int(v: Extract<Value, { t: 'int' }>): string {
  const n = v.v;
  if (n >= 0n && v.style === 'hex') return '0x' + n.toString(16);
  if (n >= 0n && v.style === 'oct') return '0o' + n.toString(8);
  if (n >= 0n && v.style === 'bin') return '0b' + n.toString(2);
  if (n >= 0n && v.style === 'plus') return '+' + n.toString();
  if (v.style === 'under') {
    const digits = (n < 0n ? -n : n).toString();
    const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, '_');
    return (n < 0n ? '-' : '') + grouped;
  }
  return n.toString();
}

function float(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Object.is(v, -0)) return '-0.0';
  const s = String(v);
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

function inline(v: Value): string {
  switch (v.t) {
    case 'str':
      return str(v);
    case 'int':
      return int(v);
    case 'float':
      return float(v.v);
    case 'bool':
      return String(v.v);
    case 'date':
      return v.v;
    case 'array':
      return `[${v.items.map(inline).join(', ')}]`;
    case 'tarray':
      return `[${v.tables.map(inline).join(', ')}]`;
    case 'table':
      return v.entries.length === 0 ? '{}' : `{ ${v.entries.map(([k, x]) => `${key(k)} = ${inline(x)}`).join(', ')} }`;
  }
}

const isSection = (v: Value): v is Table | Extract<Value, { t: 'tarray' }> => (v.t === 'table' || v.t === 'tarray') && !v.inline;

/** A table's body: its plain keys first, then its sub-tables and arrays of tables as headers. */
function body(t: Table, path: string[], out: string[]): void {
  for (const [k, v] of t.entries) if (!isSection(v)) out.push(`${key(k)} = ${inline(v)}`);
  for (const [k, v] of t.entries) {
    if (!isSection(v)) continue;
    const p = [...path, k];
    const name = p.map(key).join('.');
    if (v.t === 'table') {
      out.push(`[${name}]`);
      body(v, p, out);
    } else {
      for (const el of v.tables) {
        out.push(`[[${name}]]`);
        body(el, p, out);
      }
    }
  }
}

function serialise(root: Table, comments: boolean): string {
  const out: string[] = [];
  body(root, [], out);
  return (comments ? out.map((l) => (l.startsWith('[') ? `\n# section\n${l}` : `${l} # note`)) : out).join('\n') + '\n';
}

// ---- generators -------------------------------------------------------------------------------------------------

const keyArb = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary-ascii' }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'a.b', '', ' ', '"', "'") },
);
const d2 = (lo: number, hi: number) => fc.integer({ min: lo, max: hi }).map((n) => String(n).padStart(2, '0'));
const dateArb = fc
  .tuple(fc.integer({ min: 1000, max: 9999 }), d2(1, 12), d2(1, 28), d2(0, 23), d2(0, 59), d2(0, 59),
    fc.constantFrom('', '.5', '.123456'), fc.constantFrom('Z', 'z', '+05:30', '-08:00', ''), fc.constantFrom('T', ' ', 'date', 'time'))
  .map(([y, mo, d, h, mi, s, frac, off, sep]) => {
    if (sep === 'date') return `${y}-${mo}-${d}`;
    if (sep === 'time') return `${h}:${mi}:${s}${frac}`;
    return `${y}-${mo}-${d}${sep}${h}:${mi}:${s}${frac}${off}`;
  });

const scalarArb: fc.Arbitrary<Value> = fc.oneof(
  fc.record({ t: fc.constant('str' as const), v: fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 })), style: fc.constantFrom('basic', 'literal', 'mlbasic', 'mlliteral') }),
  fc.record({ t: fc.constant('int' as const), v: fc.oneof(fc.bigInt({ min: -1000n, max: 1000n }), fc.bigInt({ min: MIN_INT64, max: MAX_INT64 })),
    style: fc.constantFrom('dec', 'plus', 'under', 'hex', 'oct', 'bin') }),
  fc.record({ t: fc.constant('float' as const), v: fc.double() }),
  fc.record({ t: fc.constant('bool' as const), v: fc.boolean() }),
  fc.record({ t: fc.constant('date' as const), v: dateArb }),
);

const uniqueEntries = <T>(value: fc.Arbitrary<T>, maxLength: number) =>
  fc.uniqueArray(fc.tuple(keyArb, value), { selector: ([k]) => k, maxLength });

const { table: tableArb } = fc.letrec<{ value: Value; inlineValue: Value; table: Table; inlineTable: Table }>((tie) => ({
  // Values inside arrays and inline tables: everything inline.
  inlineValue: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalarArb,
    fc.record({ t: fc.constant('array' as const), items: fc.array(tie('inlineValue'), { maxLength: 3 }) }),
    tie('inlineTable'),
  ),
  inlineTable: fc.record({ t: fc.constant('table' as const), entries: uniqueEntries(tie('inlineValue'), 3), inline: fc.constant(true) }),
  // Values of a header table: may also be header sub-tables or [[arrays of tables]].
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('inlineValue'),
    tie('table'),
    fc.record({ t: fc.constant('tarray' as const), tables: fc.array(tie('table'), { minLength: 1, maxLength: 2 }), inline: fc.boolean() }),
  ),
  table: fc.record({ t: fc.constant('table' as const), entries: uniqueEntries(tie('value'), 4), inline: fc.boolean() }),
}));
const documentArb = tableArb.map((t): Table => ({ ...t, inline: false }));

// ---- properties ---------------------------------------------------------------------------------------------------

describe('parseToml (property)', () => {
  it('generated TOML parses back to exactly the model', () => {
    fc.assert(
      fc.property(documentArb, fc.boolean(), (doc, comments) => {
        const text = serialise(doc, comments);
        const r = parse(text);
        if (!r.ok) throw new Error(`valid TOML refused: ${r.error.message}\n${text}`);
        expect(r.value).toEqual(expected(doc));
        // Prototype keys are own data properties; tables have no prototype to inherit members from.
        expect(Object.getPrototypeOf(r.value)).toBe(null);
      }),
      params(),
    );
  });

  it('CRLF line endings parse the same as LF', () => {
    fc.assert(
      fc.property(documentArb, (doc) => {
        const text = serialise(doc, true);
        if (/"""|'''/.test(text)) return; // multi-line string bodies would change with the newlines
        const lf = parse(text);
        const crlf = parse(text.replace(/\n/g, '\r\n'));
        expect(crlf).toEqual(lf);
      }),
      params(),
    );
  });

  it('a key defined twice in the root table is always refused', () => {
    fc.assert(
      fc.property(documentArb, scalarArb, (doc, v) => {
        const plain = doc.entries.find(([, x]) => !isSection(x));
        if (!plain) return;
        const r = parse(`${key(plain[0])} = ${inline(v)}\n${serialise(doc, false)}`);
        expect(r.ok).toBe(false);
      }),
      params(),
    );
  });

  it('arbitrary text: a table or CARRIER_INVALID_CONFIG with a file:line location', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        parse(s);
      }),
      params(),
    );
  });

  it('text from the TOML alphabet (near misses): a table or CARRIER_INVALID_CONFIG', () => {
    const unit = fc.constantFrom(...'[]{}=.,"\'#\n\r\t \\abc019_-+:eExob'.split(''), '"""', "'''", '[[', ']]', 'inf', 'nan', 'true',
      '1979-05-27', 'T07:32:00', 'Z', '\\u', '__proto__', '0x', '\u00e9', '\u0000', '\u007f');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 60 }), (s) => {
        parse(s);
      }),
      params(),
    );
  });

  it('valid TOML with one character inserted, deleted or replaced: a table or CARRIER_INVALID_CONFIG', () => {
    fc.assert(
      fc.property(documentArb, fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), fc.constantFrom(...'[]{}=.,"\'#\n\r\\ x1'.split('')),
        (doc, at, op, c) => {
          const text = serialise(doc, false);
          const i = at % (text.length + 1);
          const mutated =
            op === 'delete' ? text.slice(0, i) + text.slice(i + 1) : op === 'insert' ? text.slice(0, i) + c + text.slice(i) : text.slice(0, i) + c + text.slice(i + 1);
          parse(mutated);
        }),
      params(),
    );
  });

  it('moderately deep nesting (up to 500 levels) of arrays and inline tables parses', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.boolean(), (n, arrays) => {
        const text = arrays ? `a = ${'['.repeat(n)}1${']'.repeat(n)}` : `a = ${'{ b = '.repeat(n)}1${' }'.repeat(n)}`;
        const r = parse(text);
        expect(r.ok).toBe(true);
      }),
      params(Math.max(20, RUNS / 20)),
    );
  });

  // Found by this suite with the former hand-written parser: ~5,000 nested '[' or '{' overflowed the JS stack (a
  // RangeError). smol-toml recurses too; the depth bound Carrier passes it keeps this a configuration error.
  it('20,000 nested arrays or inline tables give CARRIER_INVALID_CONFIG, not a RangeError', () => {
    const code = expect.objectContaining({ code: 'CARRIER_INVALID_CONFIG' });
    expect(() => parseToml(`a = ${'['.repeat(20_000)}1${']'.repeat(20_000)}`)).toThrow(code);
    expect(() => parseToml(`a = ${'{ b = '.repeat(20_000)}1${' }'.repeat(20_000)}`)).toThrow(code);
    expect(() => parseToml(`a = ${'['.repeat(MAX_TOML_DEPTH + 1)}1${']'.repeat(MAX_TOML_DEPTH + 1)}`)).toThrow(code);
  });
});
