// The bundle's second pass (scripts/bundle-cli.mjs): the public API's module (dist/index.js) as the CLI bundle sees it
// initialises only what a command uses. esbuild turns every module into an init function run on first import, and
// index.js's init runs the init of every module it re-exports, so any command initialised the whole library at its
// first import: the registry client, the transports, pull, push, trust (and the Node modules they build classes on).
// Here each re-export initialises its own module when first read instead: the namespace's getter runs that module's
// init, and a module that imports from index.js statically runs the inits of the names it mentions. The library's
// modules have no side effects at load that another module relies on, so only the moment of their loading changes.
// Anything this pass does not recognise in esbuild's output fails the build rather than guess.

const SECTION = /^\/\/ (dist\/\S+\.js)$/gm;

function fail(why) {
  throw new Error(`lazy-index: ${why} (esbuild's output is not what scripts/lazy-index.mjs expects)`);
}

/** The bundle's modules: { name, start, end, init, names } in order. */
function sections(code) {
  const heads = [...code.matchAll(SECTION)];
  return heads.map((m, i) => {
    const start = m.index;
    const end = i + 1 < heads.length ? heads[i + 1].index : code.length;
    const text = code.slice(start, end);
    const init = new RegExp(`^var (init_[\\w$]+) = __esm\\(\\{\\n  "${m[1].replace(/[.$]/g, '\\$&')}"\\(\\) \\{$`, 'm').exec(text)?.[1];
    const names = new Set();
    for (const d of text.matchAll(/^var ([^=;\n]+);$/gm)) for (const n of d[1].split(',')) names.add(n.trim());
    for (const d of text.matchAll(/^(?:async )?function\*? ([\w$]+)\(/gm)) names.add(d[1]);
    for (const d of text.matchAll(/^(?:var|let|const) ([\w$]+) = /gm)) names.add(d[1]);
    for (const d of text.matchAll(/^class ([\w$]+)/gm)) names.add(d[1]);
    return { name: m[1], start, end, text, init, names };
  });
}

export function lazyIndex(code) {
  const mods = sections(code);
  const index = mods.find((s) => s.name === 'dist/index.js') ?? fail('no dist/index.js');
  if (!index.init) fail('dist/index.js is not a lazily initialised module');
  const definer = new Map();
  for (const s of mods) for (const n of s.names) if (!definer.has(n)) definer.set(n, s);

  // the namespace: `__export(index_exports, {\n  name: () => local,\n ...\n});`
  const exp = /__export\(index_exports, \{\n((?:  [\w$]+: \(\) => [\w$]+,?\n)+)\}\);/.exec(index.text) ?? fail('no index_exports');
  const locals = new Map(); // local -> init that defines it
  const getters = exp[1].replace(/^  ([\w$]+): \(\) => ([\w$]+)(,?)$/gm, (all, key, local, comma) => {
    const s = definer.get(local) ?? fail(`no module defines ${local}`);
    if (s === index || !s.init) return all;
    locals.set(local, s.init);
    return `  ${key}: () => (${s.init}(), ${local})${comma}`;
  });
  const lazyInits = new Set(locals.values());
  // a module that only re-exports (registry/index.js) need not run either: the getters run the modules that define
  for (const s of mods) {
    const body = s.init && new RegExp(`^var ${s.init} = __esm\\(\\{\\n  "[^"]+"\\(\\) \\{\\n((?:    .*\\n)*?)  \\}\\n\\}\\);$`, 'm').exec(s.text);
    if (body && /^(?:    "use strict";\n)?(?:    init_[\w$]+\(\);\n)*$/.test(body[1])) lazyInits.add(s.init);
  }

  // index.js's own init: drop the inits its re-exports now run themselves
  const body = new RegExp(`^var ${index.init} = __esm\\(\\{\\n  "dist/index\\.js"\\(\\) \\{\\n((?:    .*\\n)*?)  \\}\\n\\}\\);$`, 'm').exec(index.text) ??
    fail('no body of the index init');
  // (a dropped call leaves its line empty: every line keeps its number, so esbuild's source map still holds)
  const kept = body[1].replace(/^    (init_[\w$]+)\(\);\n/gm, (all, init) => (lazyInits.has(init) ? '\n' : all));
  let text = index.text.replace(exp[1], getters).replace(body[1], kept);
  // The namespace object itself (~90 accessors, ~0.3 ms and ~40 KB of the young generation at every start) is only
  // what a dynamic import of index.js resolves to: a static importer uses the names directly. Its accessors are defined
  // by the first dynamic import (`version`, and the CLI's last-resort error path) rather than at the top level. (The
  // wrapping joins the statement's first and last lines: no line moves.)
  const decl = /^var index_exports = \{\};\n__export\(index_exports, \{\n(?:.*\n)*?\}\);$/m.exec(text) ?? fail('no index_exports definition');
  text =
    text.slice(0, decl.index) +
    decl[0]
      .replace('var index_exports = {};', 'var index_exports = {}, index_defined = false;')
      .replace('__export(index_exports, {', 'function index_define() { if (index_defined) return; index_defined = true; __export(index_exports, {')
      .replace(/\}\);$/, '}); }') +
    text.slice(decl.index + decl[0].length);
  const out = [];
  let at = 0;
  for (const s of mods) {
    out.push(code.slice(at, s.start));
    at = s.end;
    if (s === index) {
      out.push(text);
      continue;
    }
    // a static importer uses index's names as plain variables: it runs the inits of the ones it mentions
    out.push(
      s.text.replace(/^(\s*)init_index\(\);$/gm, (_all, indent) => {
        const needed = [...locals].filter(([local]) => new RegExp(`(?<![\\w$])${local.replace(/\$/g, '\\$')}(?![\\w$])`).test(s.text)).map(([, init]) => init);
        return `${indent}${['init_index', ...new Set(needed)].map((f) => `${f}()`).join(', ')};`;
      }),
    );
  }
  out.push(code.slice(at));
  // every reader of the namespace is a dynamic import: `(init_index(), index_exports)`
  const joined = out.join('').replace(/\(init_index\(\), index_exports\)/g, '(init_index(), index_define(), index_exports)');
  const uses = joined.match(/(?<![\w$])index_exports(?![\w$])/g)?.length ?? 0;
  const known = 2 + (joined.match(/\(init_index\(\), index_define\(\), index_exports\)/g)?.length ?? 0);
  if (uses !== known) fail(`index_exports is read ${uses - known} time(s) other than by a dynamic import`);
  return joined;
}

/**
 * The bundle's third pass: a lazily initialised module's namespace object (what a dynamic import of it resolves to)
 * gets its properties when the module initialises, not when the bundle loads. esbuild defines them at the top level,
 * one accessor at a time (a map transition and a copy of the descriptors each): ~1000 of them on every command for
 * the ~50 namespaces, most of whose modules the command never loads. Every reader of a namespace runs the module's
 * init first (`(init_x(), x_exports)`), and the definitions are the init's first statement, so nothing reads one
 * before it has its properties. Lines keep their numbers (the moved text joins the init's first line) so the source
 * map still holds.
 */
export function lazyExports(code) {
  const out = [];
  let at = 0;
  for (const s of sections(code)) {
    out.push(code.slice(at, s.start));
    at = s.end;
    const exp = /^__export\(([\w$]+), \{\n((?:  [\w$]+: \(\) => [\w$]+,?\n)*)\}\);\n/m.exec(s.text);
    if (!s.init || !exp) {
      out.push(s.text);
      continue;
    }
    const head = new RegExp(`^var ${s.init.replace(/\$/g, '\\$')} = __esm\\(\\{\\n  "[^"]+"\\(\\) \\{\\n(    "use strict";\\n)?`, 'm').exec(s.text);
    if (!head) fail(`no init header in ${s.name}`);
    if (head.index < exp.index) fail(`${s.name}'s namespace is defined after its init`);
    const call = `__export(${exp[1]}, { ${exp[2].trim().replace(/\n\s*/g, ' ')} });`;
    const insertAt = head.index + head[0].length - 1; // before the newline that ends the header (or "use strict";)
    const text =
      s.text.slice(0, exp.index) +
      '\n'.repeat(exp[0].split('\n').length - 1) +
      s.text.slice(exp.index + exp[0].length, insertAt) +
      ` ${call}` +
      s.text.slice(insertAt);
    out.push(text);
  }
  out.push(code.slice(at));
  return out.join('');
}
