// The suites, in the order they run and appear in bench/RESULTS.md: each is a directory with run.js (its fixture,
// contenders and measuring, loaded only when it runs) and report.js (its chart and its section of RESULTS.md).
import * as apply from './apply/report.js';
import * as pull from './pull/report.js';
import * as checkout from './checkout/report.js';
import * as containers from './containers/report.js';
import * as scaling from './scaling/report.js';
import * as push from './push/report.js';
import * as commit from './commit/report.js';
import * as update from './update/report.js';

export const suites = [
  { name: 'apply', ...apply, run: () => import('./apply/run.js').then((m) => m.runApplySuite) },
  { name: 'pull', ...pull, run: () => import('./pull/run.js').then((m) => m.runPullSuite) },
  { name: 'checkout', ...checkout, run: () => import('./checkout/run.js').then((m) => m.runCheckoutSuite) },
  { name: 'containers', ...containers, run: () => import('./containers/run.js').then((m) => m.runContainersSuite) },
  { name: 'scaling', ...scaling, run: () => import('./scaling/run.js').then((m) => m.runScalingSuite) },
  { name: 'push', ...push, run: () => import('./push/run.js').then((m) => m.runPushSuite) },
  { name: 'commit', ...commit, run: () => import('./commit/run.js').then((m) => m.runCommitSuite) },
  { name: 'update', ...update, run: () => import('./update/run.js').then((m) => m.runUpdateSuite) },
];

export const SUITES = suites.map((s) => s.name);
export const suite = (name) => suites.find((s) => s.name === name);
