/** `WWW-Authenticate` parsing (RFC 7235 challenges: `Scheme k=v, k="quoted, value", Scheme2 ...`). */

export interface Challenge {
  /** Lowercase: `bearer`, `basic`, ... */
  scheme: string;
  /** Parameter names lowercased. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/** Parses one or more header values into challenges; malformed tails are dropped. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let s = value;
    let current: Challenge | undefined;
    for (;;) {
      s = s.replace(/^[\s,]+/, '');
      if (s === '') break;
      const tok = TOKEN.exec(s);
      if (!tok) break;
      const word = tok[0];
      const after = s.slice(word.length);
      const eq = /^\s*=\s*/.exec(after);
      if (!eq || current === undefined || /^\s*=\s*=/.test(after)) {
        if (eq && current === undefined) break; // a parameter before any scheme
        // A new challenge (token68 values, `Basic abc==`, are skipped).
        current = { scheme: word.toLowerCase(), params: {} };
        out.push(current);
        s = after;
        const t68 = /^\s+[A-Za-z0-9\-._~+/]+=*\s*(?:,|$)/.exec(s);
        if (t68 && !/=\s*[^=\s,]/.test(t68[0])) s = s.slice(t68[0].length);
        continue;
      }
      s = after.slice(eq[0].length);
      let val: string;
      if (s.startsWith('"')) {
        let i = 1;
        val = '';
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          val += s[i];
          i++;
        }
        s = s.slice(i + 1);
      } else {
        const m = /^[^,\s]*/.exec(s)!;
        val = m[0];
        s = s.slice(val.length);
      }
      current.params[word.toLowerCase()] = val;
    }
  }
  return out;
}

/** The scopes of both lists, once each, sorted (a token's cache key). */
export function mergeScopes(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}
