// Property tests (fast-check) for what Carrier reads back from disk: the store's JSON record files (layers.json,
// images.json, containers.json) and the header index of image archives (docker-archive / oci-archive tars).
//  - RecordFile.load on arbitrary bytes: records, or CARRIER_CORRUPT_STORE; unknown fields survive a load/save cycle;
//    omitEmpty drops exactly the empty named fields and leaves every other field as found.
//  - TarIndex.build on generated, mutated and arbitrary tars: an index whose every entry lies inside the file, or a
//    CarrierError with a stated code; reads go through a handle that fails any read outside the file.
//
// Runs per property: CARRIER_PROPERTY_RUNS (default below); replay with CARRIER_PROPERTY_SEED=<seed>.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarrierError } from '../src/errors.js';
import { RecordFile, omitEmpty, type LayerRecord } from '../src/store/records.js';
import { TarIndex, looksLikeTarHeader } from '../src/load/tarindex.js';

const RUNS = Number(process.env.CARRIER_PROPERTY_RUNS ?? 1000);
// Generous: a property's wall time grows with RUNS and machine load. No call is timed (under load a fast call looked
// slow); a call that hangs or backtracks catastrophically on a generated input runs into this timeout instead.
vi.setConfig({ testTimeout: 120_000 });
const SEED = process.env.CARRIER_PROPERTY_SEED === undefined ? undefined : Number(process.env.CARRIER_PROPERTY_SEED);
const params = (numRuns = RUNS): fc.Parameters<unknown> => (SEED === undefined ? { numRuns } : { numRuns, seed: SEED });

async function outcome<T>(codes: readonly string[], f: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: CarrierError }> {
  let r: { ok: true; value: T } | { ok: false; error: CarrierError };
  try {
    r = { ok: true, value: await f() };
  } catch (err) {
    if (!(err instanceof CarrierError)) throw new Error(`threw something other than a CarrierError: ${String(err)}`, { cause: err });
    if (!codes.includes(err.code)) throw new Error(`unexpected code ${err.code} (allowed ${codes.join(', ')}): ${err.message}`);
    r = { ok: false, error: err };
  }
  return r;
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'carrier-property-store-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// ---- record files -------------------------------------------------------------------------------------------------

const fieldKey = fc.oneof(
  fc.constantFrom('names', 'parent', 'metadata', 'created', 'compressed-diff-digest', 'diff-size', 'uidset', 'flags', 'big-data-names',
    'constructor', 'toString', 'x-future-field'),
  fc.string({ maxLength: 10 }),
);
// Ids and the `parent` link are 64 lowercase hex (a record with any other is refused: issue 18); every other field is arbitrary.
const hexId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const recordArb = fc
  .tuple(hexId, hexId, fc.dictionary(fieldKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }))
  .map(([id, parent, fields]) => {
    const record = JSON.parse(JSON.stringify({ ...fields, id })) as LayerRecord;
    if (Object.hasOwn(record, 'parent')) record.parent = parent;
    return record;
  });

describe('RecordFile.load (property)', () => {
  it('arbitrary bytes: records (each an object with a string id) or CARRIER_CORRUPT_STORE', async () => {
    const file = join(dir, 'arbitrary.json');
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.array(fc.oneof(recordArb, fc.jsonValue({ maxDepth: 1 })), { maxLength: 4 }).map((v) => Buffer.from(JSON.stringify(v))),
      fc.array(recordArb, { maxLength: 3 }).chain((v) => {
        const text = JSON.stringify(v);
        return fc.nat(text.length).map((n) => Buffer.from(text.slice(0, n))); // torn writes
      }),
    );
    await fc.assert(
      fc.asyncProperty(bytesArb, async (bytes) => {
        await writeFile(file, bytes);
        const rf = new RecordFile<LayerRecord>(file, undefined, 'layer');
        const r = await outcome(['CARRIER_CORRUPT_STORE'], () => rf.load());
        if (!r.ok) {
          expect(r.error.path).toBe(file);
          return;
        }
        expect(Array.isArray(rf.records)).toBe(true);
        for (const rec of rf.records) {
          expect(typeof rec === 'object' && rec !== null && !Array.isArray(rec)).toBe(true);
          expect(rec.id).toMatch(/^[0-9a-f]{64}$/);
        }
      }),
      params(),
    );
  });

  it('records with unknown fields survive load → serialise → load unchanged', async () => {
    const file = join(dir, 'roundtrip.json');
    await fc.assert(
      fc.asyncProperty(fc.array(recordArb, { maxLength: 5 }), async (records) => {
        await writeFile(file, JSON.stringify(records));
        const a = new RecordFile<LayerRecord>(file, undefined, 'layer');
        await a.load();
        expect(a.records).toEqual(records);
        await writeFile(file, JSON.stringify(a.records)); // what save() writes (without the lock and rename)
        const b = new RecordFile<LayerRecord>(file, undefined, 'layer');
        await b.load();
        expect(b.records).toEqual(records);
        for (const r of records) expect(b.get(r.id)).toEqual(records.find((x) => x.id === r.id));
      }),
      params(Math.max(100, RUNS / 2)),
    );
  });

  it('a missing, empty or "null" file loads as no records', async () => {
    for (const text of ['', '   \n', 'null']) {
      const file = join(dir, 'empty.json');
      await writeFile(file, text);
      const rf = new RecordFile<LayerRecord>(file, undefined, 'layer');
      await rf.load();
      expect(rf.records).toEqual([]);
    }
    const rf = new RecordFile<LayerRecord>(join(dir, 'absent.json'), undefined, 'layer');
    await rf.load();
    expect(rf.records).toEqual([]);
  });
});

describe('omitEmpty (property)', () => {
  const isEmpty = (v: unknown): boolean =>
    v === undefined || v === null || v === '' || v === 0 || v === false || (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
  const valueArb = fc.oneof(fc.constantFrom(undefined, null, '', 0, false, [], {}, -0), fc.jsonValue({ maxDepth: 2 }));

  it('drops exactly the named fields that are empty and keeps every other field as found', () => {
    fc.assert(
      fc.property(fc.dictionary(fieldKey, valueArb, { maxKeys: 8 }), fc.array(fieldKey, { maxLength: 6 }), (fields, names) => {
        const record: Record<string, unknown> = { id: 'x' };
        for (const [k, v] of Object.entries(fields)) Object.defineProperty(record, k, { value: v, enumerable: true, writable: true, configurable: true });
        const before = { ...record };
        const out = omitEmpty(record, names);
        expect(out).toBe(record);
        for (const [k, v] of Object.entries(before)) {
          if (names.includes(k) && isEmpty(v)) expect(Object.hasOwn(out, k)).toBe(false);
          else {
            expect(Object.hasOwn(out, k)).toBe(true);
            expect(out[k]).toBe(v); // same value, same object: unknown content untouched
          }
        }
        expect(Object.keys(out).every((k) => Object.hasOwn(before, k))).toBe(true);
      }),
      params(),
    );
  });
});

// ---- tar index ----------------------------------------------------------------------------------------------------

/** A FileHandle over memory that fails any read outside the file or the target buffer. */
function memoryHandle(file: Buffer): FileHandle {
  const handle = {
    stat: async () => ({ size: file.length }),
    read: async (target: Buffer, offset: number, length: number, position: number) => {
      if (![offset, length, position].every((n) => Number.isSafeInteger(n) && n >= 0)) {
        throw new Error(`bad read arguments ${offset}/${length}/${position}`);
      }
      if (position + length > file.length) throw new Error(`read outside the file: ${position}+${length} > ${file.length}`);
      if (offset + length > target.length) throw new Error(`read past the target buffer: ${offset}+${length} > ${target.length}`);
      file.copy(target, offset, position, position + length);
      return { bytesRead: length, buffer: target };
    },
  };
  return handle as unknown as FileHandle;
}

type TarSpec = { name: string; type: '0' | '1' | '2' | '5'; content: Uint8Array; linkname: string; long: 'none' | 'gnu' | 'pax' | 'prefix' };

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, type: string, size: number, linkname = '', prefix = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(1577934245, 12), 136, 'latin1');
  h.write(type, 156, 'latin1');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0' + '00', 257, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  fixChecksum(h, 0);
  return h;
}

function fixChecksum(buf: Buffer, at: number): void {
  buf.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += buf[at + i]!;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', at + 148, 'latin1');
}

function pad(b: Uint8Array): Buffer {
  const out = Buffer.alloc(Math.ceil(b.length / 512) * 512);
  out.set(b);
  return out;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

/** Builds a tar; returns it with the offsets of every header block (so mutations can re-checksum them). */
function buildTar(specs: TarSpec[], endBlocks: boolean): { tar: Buffer; headers: number[] } {
  const parts: Buffer[] = [];
  const headers: number[] = [];
  let at = 0;
  const push = (b: Buffer, isHeader: boolean): void => {
    if (isHeader) headers.push(at);
    parts.push(b);
    at += b.length;
  };
  for (const s of specs) {
    const size = s.type === '0' ? s.content.length : 0;
    let name = s.name;
    let prefix = '';
    if (s.long === 'gnu') {
      const data = Buffer.from(name + '\0');
      push(header('././@LongLink', 'L', data.length), true);
      push(pad(data), false);
      name = name.slice(0, 99);
    } else if (s.long === 'pax') {
      const data = Buffer.from(paxRecord('path', name) + (s.linkname ? paxRecord('linkpath', s.linkname) : ''));
      push(header('PaxHeaders/x', 'x', data.length), true);
      push(pad(data), false);
      name = name.slice(0, 99);
    } else if (s.long === 'prefix' && name.includes('/')) {
      const cut = name.indexOf('/');
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    push(header(name, s.type, size, s.linkname.slice(0, 99), prefix), true);
    if (size > 0) push(pad(s.content), false);
  }
  if (endBlocks) push(Buffer.alloc(1024), false);
  return { tar: Buffer.concat(parts), headers };
}

const segment = fc.stringMatching(/^[a-z0-9._-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
const specArb: fc.Arbitrary<TarSpec> = fc.record({
  name: fc.array(segment, { minLength: 1, maxLength: 12 }).map((p) => p.join('/')),
  type: fc.constantFrom('0', '0', '0', '1', '2', '5'),
  content: fc.uint8Array({ maxLength: 1500 }),
  linkname: fc.array(segment, { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
  long: fc.constantFrom('none', 'gnu', 'pax', 'prefix'),
}).map((s) => {
  // Names that do not fit the plain header get a long form; links keep short targets unless PAX carries them.
  const long = s.name.length > 99 && (s.long === 'none' || s.long === 'prefix') ? 'pax' : s.long;
  return { ...s, long, linkname: s.type === '1' || s.type === '2' ? s.linkname : '' };
});
const tarSpecsArb = fc.uniqueArray(specArb, { selector: (s) => s.name, maxLength: 8 });

const TAR_CODES = ['CARRIER_BAD_TAR', 'CARRIER_TRUNCATED', 'CARRIER_UNSAFE_PATH', 'CARRIER_DUPLICATE_ENTRY', 'CARRIER_LIMIT_EXCEEDED'] as const;

/** What every index must satisfy, and resolveFile's contract on each of its names. */
function checkIndex(index: TarIndex, file: Buffer): void {
  for (const [name, e] of index.entries) {
    expect(e.name).toBe(name);
    expect(name).not.toBe('');
    expect(name.startsWith('/')).toBe(false);
    expect(name.includes('\0')).toBe(false);
    for (const part of name.split('/')) expect(['', '.', '..']).not.toContain(part);
    expect(e.offset).toBeGreaterThanOrEqual(512);
    expect(e.offset % 512).toBe(0);
    expect(e.size).toBeGreaterThanOrEqual(0);
    expect(e.offset + e.size).toBeLessThanOrEqual(file.length);
    let resolved;
    try {
      resolved = index.resolveFile(name);
    } catch (err) {
      if (!(err instanceof CarrierError)) throw err;
      expect(['CARRIER_UNSAFE_PATH', 'CARRIER_INVALID_ARCHIVE']).toContain(err.code);
      continue;
    }
    if (resolved) {
      expect(['0', '7']).toContain(resolved.type);
      expect(index.entries.get(resolved.name)).toBe(resolved);
    }
  }
}

type TarMutation =
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'field'; header: number; field: 'name' | 'size' | 'type' | 'link' | 'prefix' | 'magic'; value: Uint8Array }
  | { kind: 'truncate'; at: number };
const fieldValueArb = fc.oneof(
  fc.uint8Array({ maxLength: 12 }),
  fc.constantFrom('../../x', '/etc/passwd', 'a/../../b', '.', './', '', 'x\0y', '77777777777', '\xff\xff\xff\xff', '\x80\0\0\0\0\0\0\0\0\x10\0\0',
    'L', 'K', 'x', 'g', '5', '2', '1', '7', '-1', ' 12 ', 'ustar  \0').map((s) => Buffer.from(s, 'latin1')),
);
const tarMutationArb: fc.Arbitrary<TarMutation> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('field' as const), header: fc.nat(), field: fc.constantFrom('name', 'size', 'type', 'link', 'prefix', 'magic'),
    value: fieldValueArb }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
const FIELDS = { name: [0, 100], link: [157, 100], size: [124, 12], type: [156, 1], prefix: [345, 155], magic: [257, 8] } as const;

function mutateTar(tar: Buffer, headers: number[], mutations: TarMutation[], rechecksum: boolean): Buffer {
  let out = Buffer.from(tar);
  for (const m of mutations) {
    if (out.length === 0) break;
    if (m.kind === 'byte') out[m.at % out.length] = m.value;
    else if (m.kind === 'truncate') out = out.subarray(0, m.at % (out.length + 1));
    else if (headers.length > 0) {
      const h = headers[m.header % headers.length]!;
      const [off, width] = FIELDS[m.field];
      if (h + off + width <= out.length) {
        out.fill(0, h + off, h + off + width);
        out.set(m.value.subarray(0, width), h + off);
      }
    }
  }
  if (rechecksum) for (const h of headers) if (h + 512 <= out.length) fixChecksum(out, h);
  return out;
}

describe('TarIndex.build (property)', () => {
  it('generated tars index to exactly their entries, content offsets pointing at the content', async () => {
    await fc.assert(
      fc.asyncProperty(tarSpecsArb, fc.boolean(), async (specs, endBlocks) => {
        const { tar } = buildTar(specs, endBlocks);
        const r = await outcome([], () => TarIndex.build(memoryHandle(tar)));
        if (!r.ok) return;
        const index = r.value;
        expect([...index.entries.keys()].sort()).toEqual(specs.map((s) => s.name).sort());
        for (const s of specs) {
          const e = index.entries.get(s.name)!;
          expect(e.type).toBe(s.type);
          expect(e.linkname).toBe(s.linkname);
          if (s.type === '0') expect(tar.subarray(e.offset, e.offset + e.size).equals(Buffer.from(s.content))).toBe(true);
          else expect(e.size).toBe(0);
        }
        checkIndex(index, tar);
        if (specs.length > 0) expect(looksLikeTarHeader(tar)).toBe(true);
      }),
      params(),
    );
  });

  it('mutated tars (bytes, header fields, truncation; checksums fixed up or not): an index inside the file or a stated code', async () => {
    await fc.assert(
      fc.asyncProperty(tarSpecsArb, fc.array(tarMutationArb, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.boolean(),
        fc.constantFrom(undefined, 1, 3), fc.constantFrom(undefined, 16, 600),
        async (specs, mutations, rechecksum, endBlocks, maxEntries, maxMetaBytes) => {
          const { tar, headers } = buildTar(specs, endBlocks);
          const file = mutateTar(tar, headers, mutations, rechecksum);
          const limits = { ...(maxEntries === undefined ? {} : { maxEntries }), ...(maxMetaBytes === undefined ? {} : { maxMetaBytes }) };
          const r = await outcome(TAR_CODES, () => TarIndex.build(memoryHandle(file), limits));
          if (r.ok) {
            checkIndex(r.value, file);
            if (maxEntries !== undefined) expect(r.value.entries.size).toBeLessThanOrEqual(maxEntries);
          }
        }),
      params(),
    );
  });

  it('arbitrary bytes, and random header blocks with a valid checksum: an index inside the file or a stated code', async () => {
    const blockArb = fc.uint8Array({ minLength: 512, maxLength: 512 }).map((b) => {
      const h = Buffer.from(b);
      fixChecksum(h, 0);
      return h;
    });
    const fileArb = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.array(blockArb, { minLength: 1, maxLength: 3 }), fc.uint8Array({ maxLength: 1024 })).map(([hs, tail]) => Buffer.concat([...hs, tail])),
    );
    await fc.assert(
      fc.asyncProperty(fileArb, async (file) => {
        const r = await outcome(TAR_CODES, () => TarIndex.build(memoryHandle(file)));
        if (r.ok) checkIndex(r.value, file);
      }),
      params(),
    );
  });

  it('unsafe names are refused, never indexed', async () => {
    const unsafe = fc.oneof(
      fc.constantFrom('/etc/passwd', '../x', 'a/../../x', 'a/..', '..', '/', 'x\0y'),
      fc.tuple(fc.array(segment, { maxLength: 3 }), fc.array(segment, { maxLength: 3 })).map(([a, b]) => [...a, '..', ...b].join('/')),
    );
    await fc.assert(
      fc.asyncProperty(unsafe, fc.constantFrom('none', 'gnu', 'pax'), async (name, long) => {
        const { tar } = buildTar([{ name, type: '0', content: new Uint8Array(3), linkname: '', long: long as TarSpec['long'] }], true);
        const r = await outcome(TAR_CODES, () => TarIndex.build(memoryHandle(tar)));
        // A NUL cuts a plain or GNU name short ('x'), which is then a safe name; otherwise the name is refused.
        if (r.ok) {
          checkIndex(r.value, tar);
          expect(name.includes('\0') && long !== 'pax').toBe(true);
        } else expect(['CARRIER_UNSAFE_PATH', 'CARRIER_BAD_TAR']).toContain(r.error.code);
      }),
      params(Math.max(100, RUNS / 4)),
    );
  });
});
