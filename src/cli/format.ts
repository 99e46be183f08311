// Rendering helpers that reproduce podman 4.3.1's terminal output: its table layout, human sizes and durations, and
// Go's JSON encoding quirks. Each rule below was checked against `podman images` / `podman image inspect` output.

/**
 * Size as podman prints it: decimal units (1000, not 1024), 3 significant digits formatted like Go's `%.3g`.
 * Observed: 11535 → "11.5 kB", 11349 → "11.3 kB", 10240 → "10.2 kB".
 */
export function humanSize(bytes: number): string {
  const [size, unit] = decimalUnits(bytes);
  return `${goG3(size)} ${unit}`;
}

/** go-units' decimal scaling: the size divided by 1000 while it is at least 1000, and the unit it ended in. */
export function decimalUnits(bytes: number): [number, string] {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return [size, units[i]!];
}

/** Go's `%.3g`: 3 significant digits, trailing zeros dropped, exponent form (`1e+03`) when the exponent is ≥ 3. */
function goG3(x: number): string {
  const s = x.toPrecision(3);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m) {
    const mant = m[1]!.includes('.') ? m[1]!.replace(/0+$/, '').replace(/\.$/, '') : m[1]!;
    return `${mant}e${m[2]}${m[3]!.padStart(2, '0')}`;
  }
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/**
 * "How long ago" the way podman words it (go-units HumanDuration + " ago"): "Less than a second", "1 second",
 * "N seconds", "About a minute", "N minutes", "About an hour", "N hours" (< 48 h, hours rounded), "N days"
 * (< 2 weeks), "N weeks" (< 2 months of 30 days), "N months" (< 2 years), else "N years".
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

export function timeAgo(created: string | undefined, now = Date.now()): string {
  const t = created ? Date.parse(created) : NaN;
  if (Number.isNaN(t)) return 'Less than a second ago';
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

/**
 * podman's table writer (Go text/tabwriter with minwidth 12, padding 2, spaces): every column but the last is as
 * wide as max(12, longest cell + 2); the last column is not padded.
 */
export function renderTable(rows: string[][]): string {
  if (rows.length === 0) return '';
  const cols = Math.max(...rows.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < cols - 1; c++) {
    widths.push(Math.max(12, ...rows.map((r) => (r[c] ?? '').length + 2)));
  }
  return rows
    .map((r) => r.map((cell, c) => (c < r.length - 1 ? cell.padEnd(widths[c]!) : cell)).join(''))
    .join('\n') + '\n';
}

/**
 * JSON as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped inside strings. (Those characters
 * can only occur inside strings in JSON text, so replacing them everywhere is safe.)
 */
export function goJson(value: unknown, indent: number): string {
  return JSON.stringify(value, null, indent).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A time as Go's time.Time marshals a whole-second local time: RFC 3339 with the local offset (or `Z` in UTC). */
export function goLocalTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const off = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + off * 60_000).toISOString().replace(/\.\d{3}Z$/, '');
  if (off === 0) return `${local}Z`;
  const sign = off > 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${local}${sign}${String(Math.trunc(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/**
 * A very small subset of Go templates for `--format`: `{{.Field}}` and `{{.Field.Sub}}`, `\t` and `\n` escapes.
 * Strings print as is, other values as JSON.
 */
export function renderTemplate(template: string, data: Record<string, unknown>): string {
  const text = template.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return text.replace(/\{\{\s*\.([A-Za-z0-9_.]+)\s*\}\}/g, (_, path: string) => {
    let v: unknown = data;
    for (const k of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (v === undefined || v === null) return '<no value>';
    return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  });
}

/** `1 layer`, `2 layers`: a count with its noun in the right number. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
