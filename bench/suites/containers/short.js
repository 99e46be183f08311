// The containers suite's short-command rows (issue 21): each command a test harness or CI script calls thousands of
// times, carrier against podman on the same image, each timed from spawn to exit, beside `node -e 0` (Node's own
// start-up, which no Node CLI can beat); and create + mount in-process through the library (what a harness should
// do instead).
//
// The rows form one group (run.js): one round-robin over all of them, so that a round runs every command once per
// CLI, in the order a harness would: images, inspect, ps, create, mount, umount, rm, version. create makes the
// container the same round's mount, umount and rm act on (a redone create leaves one more container behind; ps then
// lists one more). Each command is also timed in CPU-seconds (user + system, /usr/bin/time): on a machine other work
// shares, wall time swings with the queue for the CPUs, CPU time much less.
//
// Each carrier command is also measured against Node's own start-up paired: `node -e 0` runs right before it, in the
// same timed run, and the row's `over node -e 0` is the median of the per-run differences. The target (every
// short command within Node's start-up + 25 ms) is that difference; the two medians of separate rows moved by ±10 ms
// between runs minutes apart on this machine, as its speed drifted, where a run's pair drifts together.
import fs from 'node:fs';
import path from 'node:path';
import { timeCommand } from '../../lib/util.js';

const TIME_BIN = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs a command: { seconds (wall), cpu (user + system seconds, when /usr/bin/time is there), code, stdout, stderr }. */
async function timedWithCpu(cmd, args, env, tmp) {
  if (!TIME_BIN) return timeCommand(cmd, args, { env: { ...process.env, ...env }, allowFail: true, stdout: 'pipe' });
  const out = path.join(tmp, 'cpu');
  const r = await timeCommand(TIME_BIN, ['-f', '%U %S', '-o', out, cmd, ...args], { env: { ...process.env, ...env }, allowFail: true, stdout: 'pipe' });
  const [user, sys] = fs.readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { ...r, cpu: user + sys };
}

/** A container record and its mount, per CLI, handed from create to mount, umount and rm within a round. */
function pipeline() {
  const made = { carrier: [], podman: [] };
  return {
    push: (who, id) => made[who].push(id),
    last: (who) => {
      const id = made[who].at(-1);
      if (!id) throw new Error(`${who}: no container from this round's create`);
      return id;
    },
    pop: (who) => made[who].pop(),
    has: (who) => made[who].length > 0,
  };
}

/**
 * The scenarios (group 'short'): `clis` is { carrier: [cmd, globalArgs, env], podman: [...] }, `check(what, r)`
 * throws when a command failed, `api` the loaded public API, `where` Carrier's { root, runroot }, `img` the image,
 * `tmp` a directory for /usr/bin/time's output.
 */
export function shortCommandScenarios({ clis, check, api, where, img, tmp }) {
  const run = async (what, cmd, args, env) => check(what, await timedWithCpu(cmd, args, env, tmp));
  const nodeStart = () => run('node -e 0', process.execPath, ['-e', '0'], {});
  const p = pipeline();
  // mount, umount and rm act on this round's container; a redone run may find none left, and makes one (untimed)
  const needs = async (who) => {
    if (p.has(who)) return;
    const [cmd, pre, env] = clis[who];
    p.push(who, (await run(`${who} create`, cmd, [...pre, 'create', img], env)).stdout.trim().split('\n').pop());
  };
  const row = (id, title, args, after, needsContainer = false) => ({
    id: `short-${id}`,
    group: 'short',
    title,
    items: Object.entries(clis).map(([who, [cmd, pre, env]]) => ({
      id: who,
      label: `${who} ${title}`,
      command: `${who} ${title}`,
      run: async ({ timed }) => {
        if (needsContainer) await needs(who);
        return timed(async () => {
          const node = who === 'carrier' ? await nodeStart() : undefined;
          const r = await run(`${who} ${id}`, cmd, [...pre, ...args(who)], env);
          after?.(who, r.stdout.trim());
          return { seconds: r.seconds, cpu: r.cpu, ...(node ? { overNode: r.seconds - node.seconds } : {}) };
        });
      },
    })),
  });
  const inProcess = {
    id: 'in-process',
    group: 'short',
    title: 'createContainer + mountContainer, in-process',
    items: [
      {
        id: 'carrier',
        label: 'carrier library: createContainer + mountContainer',
        command: 'await createContainer(store, IMG); await mountContainer(store, id) (in the benchmark process, the store opened before)',
        run: async ({ timed }) => {
          const store = await api.Store.open(where);
          try {
            let id;
            const r = await timed(async () => {
              const t0 = process.hrtime.bigint();
              id = (await api.createContainer(store, img)).id;
              await api.mountContainer(store, id);
              return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
            });
            await api.unmountContainer(store, id);
            await api.removeContainer(store, id);
            return r;
          } finally {
            await store.close();
          }
        },
      },
    ],
  };
  const node = {
    id: 'short-node',
    group: 'short',
    title: 'node -e 0 (Node’s own start-up)',
    items: [{
      id: 'node',
      label: 'node -e 0',
      command: 'node -e 0 (the floor of any Node CLI: the targets are this + 25 ms)',
      run: ({ timed }) => timed(async () => {
        const r = await nodeStart();
        return { seconds: r.seconds, cpu: r.cpu };
      }),
    }],
  };
  return [
    node,
    row('images', 'images', () => ['images']),
    row('inspect', 'inspect IMG', () => ['inspect', img]),
    row('ps', 'ps -a', () => ['ps', '-a']),
    row('create', 'create IMG', () => ['create', img], (who, out) => p.push(who, out.split('\n').pop())),
    row('mount', 'mount ID', (who) => ['mount', p.last(who)], undefined, true),
    row('umount', 'umount ID', (who) => ['umount', p.last(who)], undefined, true),
    row('rm', 'rm ID', (who) => ['rm', p.last(who)], (who) => p.pop(who), true),
    row('version', 'version', () => ['version']),
    inProcess,
  ];
}
