// A fleet file read into start plans: pm2's keys as pm2 documents them, ours
// beside them, the rule telling a fleet file from a script, what is said on
// stderr and what is refused. Files in a temporary directory; no process.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const require = createRequire(import.meta.url);
const { isFleetFile, readFleet } = require('../../lib/cli/fleet.js');
const { fleetFileIn } = require('../../lib/cli/fleet-commands.js');
const { availableCpus } = require('../../lib/shared/options.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-fleet-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.mkdirSync(path.join(dir, 'srv'));
for (const name of ['app.js', 'srv/api.js', 'worker.mjs']) fs.writeFileSync(path.join(dir, name), '');

let files = 0;
/** Writes `text` as a fleet file (`name`, or the next ecosystem file) and returns its path. */
function fleetFile(text, name = `f${files++}.config.js`) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}
const apps = (...list) => fleetFile(`module.exports = ${JSON.stringify({ apps: list })};\n`);
const read = (file, options) => readFleet(file, options);
const rejects = (promise, code, pattern) => assert.rejects(promise, (error) => error.code === code && pattern.test(error.message));

test('the rule: *.config.js, .cjs, .mjs and *.json that exist are fleet files; scripts and missing files are not', () => {
  for (const name of ['ecosystem.config.js', 'pm2.config.cjs', 'a.config.mjs', 'apps.json']) {
    assert.equal(isFleetFile(fleetFile('', name)), true, name);
  }
  assert.equal(isFleetFile(path.join(dir, 'app.js')), false);
  assert.equal(isFleetFile(path.join(dir, 'missing.config.js')), false);
  assert.equal(isFleetFile(dir), false);
  const file = fleetFile('', 'ecosystem.config.js');
  // First in the script's or NAME's place, flags before or after it; never after `--`, nor as a flag's value.
  assert.deepEqual(fleetFileIn('start', [file, '--env', 'production']), { file, rest: ['--env', 'production'] });
  assert.deepEqual(fleetFileIn('stop', ['--only', 'a', file]), { file, rest: ['--only', 'a'] });
  assert.equal(fleetFileIn('start', ['--', file]), null);
  assert.equal(fleetFileIn('start', ['app.js', file]), null);
  assert.equal(fleetFileIn('start', ['--cwd', file, 'app.js']), null);
  assert.deepEqual(fleetFileIn('status', ['--config', 'apps.js']), { file: undefined, rest: ['--config', 'apps.js'] });
});

test("pm2's keys: script and cwd against the file's directory, args, instances, env_NAME over env, node_args, limits", async () => {
  const file = apps(
    {
      name: 'api',
      script: 'api.js',
      cwd: 'srv',
      args: '--port 3000 "two words"',
      instances: 0,
      exec_mode: 'cluster',
      env: { PORT: 3000, NODE_ENV: 'development', DEBUG: false, CONFIG: { a: 1 } },
      env_production: { NODE_ENV: 'production' },
      node_args: '--max-old-space-size=512',
      max_restarts: '5',
      kill_timeout: 3000,
      listen_timeout: 8000,
      max_memory_restart: '300M',
      wait_ready: true,
      out_file: 'out.log',
      error_file: '/var/log/api.err',
      merge_logs: true,
      uid: 'www-data',
      gid: 33,
    },
    { script: 'app.js', instances: -1, args: ['a', 1] },
  );
  const {
    apps: [api, app],
    notes,
  } = await read(file, { envName: 'production' });
  assert.deepEqual(notes, ['app: has no env_production: its env as it is']);
  assert.deepEqual([api.name, api.script, api.scriptArgs], ['api', path.join(dir, 'srv', 'api.js'), ['--port', '3000', 'two words']]);
  assert.deepEqual(
    { ...api.flags },
    {
      cwd: path.join(dir, 'srv'),
      instances: 'max',
      'node-arg': ['--max-old-space-size=512'],
      'respawn-limit': 5,
      'kill-timeout': 3000,
      'ready-timeout': 8000,
      'max-memory': '300M',
      'wait-ready': true,
      stdout: path.join(dir, 'srv', 'out.log'),
      stderr: '/var/log/api.err',
      user: 'www-data',
      group: 33,
      respawn: true,
      listen: ['3000'],
    },
  );
  assert.deepEqual({ ...api.env }, { PORT: '3000', NODE_ENV: 'production', DEBUG: 'false', CONFIG: '{"a":1}' });
  // No name: the script's; no cwd: the file's directory; -1: every CPU but one, at least 1; a fork app holds no port.
  assert.deepEqual(
    [app.name, app.flags.cwd, app.flags.instances, app.scriptArgs],
    ['app', dir, Math.max(1, availableCpus() - 1), ['a', '1']],
  );
  assert.equal(app.flags.listen, undefined);
});

test('a cluster app holds its numeric PORT unless it has listen; autorestart false runs no supervisor', async () => {
  const file = apps(
    { name: 'two', script: 'app.js', instances: 2, env: { PORT: '4000' } },
    { name: 'own', script: 'app.js', exec_mode: 'cluster_mode', listen: [4001, '127.0.0.1:4002'], env: { PORT: 4003 } },
    { name: 'named', script: 'app.js', exec_mode: 'cluster', env: { PORT: 'http' } },
    { name: 'once', script: 'app.js', autorestart: false, kill_timeout: 100, port: 4004, exec_mode: 'cluster' },
    { name: 'ours', script: 'app.js', respawn: { instances: 3, limit: 2, window: 1000 }, log_max_size: '10M', log_keep: 2 },
  );
  const {
    apps: [two, own, named, once, ours],
    notes,
  } = await read(file);
  assert.deepEqual([two.flags.listen, own.flags.listen, named.flags.listen], [['4000'], ['4001', '127.0.0.1:4002'], undefined]);
  assert.deepEqual(
    [once.flags.respawn, once.flags['kill-timeout'], once.env.PORT, once.flags.listen],
    [undefined, undefined, '4004', ['4004']],
  );
  assert.deepEqual(notes, ['once: ignoring kill_timeout (autorestart is false: no supervisor)']);
  assert.deepEqual(
    { ...ours.flags },
    { cwd: dir, instances: 3, 'respawn-limit': 2, 'respawn-window': 1000, 'log-max-size': '10M', 'log-keep': 2, respawn: true },
  );
});

test('every key neither known nor supported is named, one line each; a false one asks for nothing', async () => {
  const file = fleetFile(
    `module.exports = { apps: [{ name: 'accweb', script: 'app.js', watch: true, vizion: false, instnces: 2, min_uptime: '10s', time: true,
       log_file: 'all.log', out_file: 'out.log', merge_logs: false, instances: 2 }], deploy: { production: {} } };`,
  );
  const { notes } = await read(file);
  assert.deepEqual(notes, [
    `${path.basename(file)}: ignoring deploy (pm2's deploy is not supported)`,
    'accweb: ignoring log_file (out_file and error_file take the streams: a stream goes to one file)',
    'accweb: ignoring merge_logs: false (the instances share the log files, each line starting with [K])',
    'accweb: ignoring watch (not supported: use node --watch)',
    'accweb: ignoring instnces (unknown: did you mean instances?)',
    'accweb: ignoring min_uptime (an instance ready for 10 s is stable; max_restarts counts restarts within respawn_window (60 s))',
    'accweb: ignoring time (lines are written as the app writes them)',
  ]);
});

test('a wrong type or value names the file, the app and the key', async () => {
  const cases = [
    [
      { name: 'a', script: 'app.js', instances: true },
      'ERR_INVALID_ARG_TYPE',
      /: a: instances must be an integer, not type boolean \(true\)$/,
    ],
    [{ name: 'a', script: 'app.js', env: { X: null } }, 'ERR_INVALID_ARG_TYPE', /: a: env\.X must be a string, number or boolean/],
    [{ name: 'a', script: 'app.js', env_production: [] }, 'ERR_INVALID_ARG_TYPE', /: a: env_production must be an object/],
    [{ name: 'a', script: 'app.js', kill_timeout: 0 }, 'ERR_OUT_OF_RANGE', /: a: kill_timeout must be from 1, not 0$/],
    [
      { name: 'a', script: 'app.js', max_memory_restart: '1T' },
      'ERR_INVALID_ARG_TYPE',
      /: a: max_memory_restart must be a number of bytes/,
    ],
    [{ name: 'a', script: 'app.js', exec_mode: 'cluster2' }, 'ERR_INVALID_ARG_TYPE', /: a: exec_mode must be 'cluster' or 'fork'/],
    [
      { name: 'a', script: 'app.js', interpreter: 'bun' },
      'ERR_INVALID_ARG_VALUE',
      /: a: interpreter "bun" is not supported: daemon runs each script with the Node/,
    ],
    [{ name: 'a', script: 'app.js', uid: 'x', user: 'y' }, 'ERR_INVALID_ARG_VALUE', /: apps\[1\]: give uid or user, not both$/],
    [{ name: 'a', script: 'app.js', autorestart: false, instances: 2 }, 'ERR_INVALID_ARG_VALUE', /: a: 2 instances need a supervisor/],
    [{ name: 'a', script: 'app.js', autorestart: false, respawn: true }, 'ERR_INVALID_ARG_VALUE', /: a: autorestart and respawn disagree/],
    [{ name: 'a', script: 'missing.js' }, 'ENOENT', /: a: script \S+missing\.js: no such file$/],
    [{ name: 'a' }, 'ERR_INVALID_ARG_VALUE', /: a: script is missing$/],
    [{ name: 'a/b', script: 'app.js' }, undefined, /: a\/b: name: bad name "a\/b"/],
    ['app.js', 'ERR_INVALID_ARG_TYPE', /: apps\[1\] must be an object, not type string/],
  ];
  for (const [app, code, pattern] of cases) {
    await rejects(read(apps({ name: 'ok', script: 'app.js' }, app)), code, pattern);
  }
  await rejects(
    read(fleetFile('module.exports = { app: [] };')),
    'ERR_INVALID_ARG_TYPE',
    /its export must be an object with an apps array/,
  );
  await rejects(read(apps({ script: 'app.js' }, { script: 'app.js' })), 'ERR_INVALID_ARG_VALUE', /two apps are named app$/);
});

test('--env NAME that no app has, and --only a name the file lacks, are usage errors; --only narrows', async () => {
  const file = apps({ name: 'a', script: 'app.js', env_production: {} }, { name: 'b', script: 'app.js' });
  await assert.rejects(read(file, { envName: 'prodution' }), /no app of \S+ has env_prodution/);
  await assert.rejects(read(file, { only: ['c'] }), /has no app named c \(its apps: a, b\)/);
  const { apps: only, notes } = await read(file, { only: ['b'], envName: 'production' });
  assert.deepEqual([only.map((app) => app.name), notes], [['b'], ['b: has no env_production: its env as it is']]);
});

test('a .json as pm2 reads one (comments too), an ES module (default or named export), a .cjs', async () => {
  const json = fleetFile('{\n  // pm2 reads this\n  "apps": [{ "name": "j", "script": "app.js" }],\n}\n', 'comments.json');
  assert.equal((await read(json)).apps[0].name, 'j');
  assert.equal((await read(fleetFile(JSON.stringify({ apps: [{ script: 'app.js' }] }), 'plain.json'))).apps[0].name, 'app');
  const esm = fleetFile("export default { apps: [{ name: 'm', script: 'worker.mjs' }] };\n", 'e.config.mjs');
  assert.equal((await read(esm)).apps[0].name, 'm');
  const named = fleetFile("export const apps = [{ name: 'n', script: 'app.js' }];\n", 'n.config.mjs');
  assert.equal((await read(named)).apps[0].name, 'n');
  const cjs = fleetFile("module.exports = { apps: [{ name: 'c', script: 'app.js' }] };\n", 'c.config.cjs');
  assert.equal((await read(cjs)).apps[0].name, 'c');
  await assert.rejects(read(fleetFile('{ "apps": [', 'broken.json')), /broken\.json: .*JSON/);
});
