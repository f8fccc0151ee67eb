// A fleet in a file: pm2's ecosystem file started as it is (a cluster app on
// its env PORT, env_production with --env production, process.send('ready')),
// the commands on FILE and --only, restart FILE from the file and restart NAME
// from the record, refusals before anything starts, and what root loads.
// Real daemons, each test with its own DAEMON_DIR.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  asNobody,
  publicCopy,
  children,
  cliWorkspace as workspace,
  cmdline,
  environ,
  freePort,
  killAndWait,
  listeningPorts,
  readPid,
  waitGone,
  writeScript as script,
} from './helpers.mjs';

const NOBODY = 65534;
const idle = 'setInterval(() => {}, 1000);\n';

/** GET / of 127.0.0.1:`port`: the body as JSON. */
function get(port) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

/** The pids each named app's pid file names now (killed at the end of a test, whatever happened). */
function pidsOf(state, names) {
  return names.map((name) => path.join(state, `${name}.pid`)).flatMap((file) => (fs.existsSync(file) ? [readPid(file)] : []));
}

/** A pm2 app answering with its pid, NODE_ENV and instance: unmodified listen(process.env.PORT). */
const SERVER = `require('node:http')
  .createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, env: process.env.NODE_ENV, instance: process.env.NODE_APP_INSTANCE })))
  .listen(process.env.PORT);
`;

test("pm2's ecosystem file as it is: a cluster app on env.PORT, env_production with --env production after FILE, process.send('ready'), an unknown key named; status, list, stop --only, stop FILE", async () => {
  const { dir, state, daemon } = workspace('fleet-pm2');
  const port = await freePort();
  script(dir, 'server.js', SERVER);
  // The worker says when it is ready, as under pm2's wait_ready; the file it writes first proves the start waited.
  script(dir, 'worker.js', `setTimeout(() => { require('node:fs').writeFileSync('sent', ''); process.send('ready'); }, 300);\n${idle}`);
  const file = script(
    dir,
    'ecosystem.config.js',
    `module.exports = {
  apps: [
    { name: 'api', script: './server.js', instances: 2, exec_mode: 'cluster', env: { PORT: ${port}, NODE_ENV: 'development' }, env_production: { NODE_ENV: 'production' } },
    { name: 'worker', script: 'worker.js', args: '--queue mail', wait_ready: true, autorestart: false, watch: true, env: { NODE_ENV: 'development' }, env_production: { NODE_ENV: 'production' } },
  ],
};
`,
  );
  try {
    // From another directory: the scripts and cwd are the file's.
    const started = await daemon(['start', file, '--env', 'production'], { cwd: '/' });
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stderr, 'daemon: worker: ignoring watch (not supported: use node --watch)\n');
    const [api, worker] = pidsOf(state, ['api', 'worker']);
    assert.equal(started.stdout, `api started, pid ${api}\nworker started, pid ${worker}\n`);
    // api: its supervisor holds PORT; both instances took it with their own listen(process.env.PORT).
    assert.deepEqual(listeningPorts(api, 'tcp6'), [port]);
    const instances = children(api);
    assert.equal(instances.length, 2);
    const answers = [];
    for (let i = 0; i < 40 && new Set(answers.map((a) => a.instance)).size < 2; i++) answers.push(await get(port));
    assert.deepEqual(new Set(answers.map((a) => a.instance)), new Set(['0', '1']));
    assert.deepEqual(new Set(answers.map((a) => a.pid)), new Set(instances));
    assert.deepEqual(new Set(answers.map((a) => a.env)), new Set(['production']));
    // worker: no supervisor (autorestart: false), its arguments and env, ready only once it said so.
    assert.deepEqual(cmdline(worker).slice(-3), [path.join(dir, 'worker.js'), '--queue', 'mail']);
    assert.ok(environ(worker).includes('NODE_ENV=production'));
    assert.ok(fs.existsSync(path.join(dir, 'sent')), 'the start waited for process.send("ready")');
    assert.equal(children(worker).length, 0);
    // list shows them as any other service; status FILE as a table of its apps.
    const list = await daemon(['list']);
    assert.match(list.stdout, new RegExp(`^api +${api} +running 2/2 `, 'm'));
    assert.match(list.stdout, new RegExp(`^worker +${worker} +running `, 'm'));
    const status = await daemon(['status', file]);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(
      status.stdout.split('\n').map((line) => line.trim().split(/ +/)[0]),
      ['NAME', 'api', '0', '1', 'worker', ''],
    );
    // upgrade and reload FILE act on each app as on its NAME (the worker has no supervisor to upgrade it).
    const upgraded = await daemon(['upgrade', file]);
    assert.equal(upgraded.code, 1);
    assert.match(upgraded.stdout, /^api: upgraded 2 instances: \d+ \(was \d+\), \d+ \(was \d+\)\n$/);
    assert.match(upgraded.stderr, /^daemon: worker: worker runs without a supervisor/);
    assert.equal((await get(port)).env, 'production');
    const reloaded = await daemon(['reload', file, '--only', 'worker']);
    assert.deepEqual([reloaded.code, reloaded.stdout], [0, `worker: sent SIGHUP to ${worker}\n`]);
    // --only narrows; the exit status is the worst app's.
    const one = await daemon(['stop', '--only', 'worker', file]);
    assert.deepEqual([one.code, one.stdout, one.stderr], [0, `worker: stopped ${worker}\n`, '']);
    await waitGone(worker);
    assert.ok(alive(api));
    assert.equal((await daemon(['status', file, '--json'])).code, 3);
    const upgradedInstances = children(api);
    const both = await daemon(['stop', file]);
    assert.deepEqual([both.code, both.stdout], [0, `api: stopped ${api}\nworker: not running\n`]);
    for (const pid of [api, ...upgradedInstances]) await waitGone(pid);
    const deleted = await daemon(['delete', file]);
    assert.deepEqual([deleted.code, deleted.stdout], [0, 'deleted api\ndeleted worker\n']);
    assert.deepEqual(
      fs.readdirSync(state).filter((entry) => entry.endsWith('.json')),
      [],
    );
  } finally {
    for (const pid of pidsOf(state, ['api', 'worker'])) await killAndWait(pid);
  }
});

test('a wrong key type, or a key start() refuses, refuses the whole file before anything starts', async () => {
  const { dir, state, daemon } = workspace('fleet-wrong');
  script(dir, 'app.js', idle);
  const cases = [
    [
      "{ name: 'b', script: 'app.js', instances: 'two' }",
      "daemon: ecosystem.config.js: b: instances must be an integer, not type string ('two')\n",
    ],
    [
      "{ name: 'b', script: 'app.js', env: { PORT: null } }",
      'daemon: ecosystem.config.js: b: env.PORT must be a string, number or boolean, not null\n',
    ],
    ["{ name: 'b', script: 'app.js', listen: 'nowhere' }", /^daemon: b: The argument 'options\.listen\[0\]' must be PORT/],
  ];
  for (const [second, said] of cases) {
    const file = script(dir, 'ecosystem.config.js', `module.exports = { apps: [{ name: 'a', script: 'app.js' }, ${second}] };\n`);
    const refused = await daemon(['start', file]);
    assert.equal(refused.code, 1, refused.stderr);
    if (typeof said === 'string') assert.equal(refused.stderr, said);
    else assert.match(refused.stderr, said);
    assert.equal(refused.stdout, '');
    // Nothing started, nothing recorded.
    assert.deepEqual(fs.existsSync(state) ? fs.readdirSync(state) : [], []);
  }
});

test("ES modules through the command's own import(): a fleet file in .mjs is read, `run` of an .mjs script runs it; an app never started has a dash for each figure", async () => {
  const { dir, daemon } = workspace('fleet-esm');
  const hello = script(dir, 'hello.mjs', 'console.log(`hello from ${import.meta.url.slice(-9)}`);\n');
  const file = script(dir, 'esm.config.mjs', "export default { apps: [{ name: 'esm-one', script: './hello.mjs' }] };\n");
  const status = await daemon(['status', file]);
  assert.equal(status.code, 3, status.stderr);
  assert.match(status.stdout, /^esm-one +- +not started +- +- +- +- +-$/m);
  const ran = await daemon(['run', hello]);
  assert.deepEqual([ran.code, ran.stdout, ran.stderr], [0, 'hello from hello.mjs\n', '']);
});

test('restart FILE starts each app from the file as it is now; restart NAME from its record; status and delete FILE', async () => {
  const { dir, state, daemon } = workspace('fleet-restart');
  script(dir, 'app.js', idle);
  const write = (greeting) =>
    script(
      dir,
      'apps.json',
      JSON.stringify({
        apps: ['one', 'two'].map((name) => ({
          name,
          script: 'app.js',
          env: { GREETING: greeting },
          node_args: '--max-old-space-size=100',
        })),
      }),
    );
  const file = write('hello');
  const greeting = (name) => environ(readPid(path.join(state, `${name}.pid`))).find((entry) => entry.startsWith('GREETING='));
  try {
    assert.equal((await daemon(['start', file])).code, 0);
    assert.deepEqual([greeting('one'), greeting('two')], ['GREETING=hello', 'GREETING=hello']);
    // A supervisor (autorestart is pm2's default) runs the app with node_args on its Node's command line.
    const [app] = children(pidsOf(state, ['one'])[0]);
    assert.deepEqual(cmdline(app).slice(1, 3), ['--max-old-space-size=100', '-r'], "node_args are the script's Node's");
    write('bonjour');
    const byName = await daemon(['restart', 'one']);
    assert.equal(byName.code, 0, byName.stderr);
    assert.equal(greeting('one'), 'GREETING=hello', 'restart NAME replays the record');
    const before = pidsOf(state, ['one', 'two']);
    const byFile = await daemon(['restart', file, '--only', 'one,two']);
    assert.equal(byFile.code, 0, byFile.stderr);
    const after = pidsOf(state, ['one', 'two']);
    assert.equal(byFile.stdout, `one started, pid ${after[0]}\ntwo started, pid ${after[1]}\n`);
    for (const pid of before) assert.ok(!alive(pid));
    assert.deepEqual([greeting('one'), greeting('two')], ['GREETING=bonjour', 'GREETING=bonjour']);
    const status = await daemon(['status', file, '--json']);
    assert.equal(status.code, 0);
    assert.deepEqual(
      JSON.parse(status.stdout).map((row) => [row.name, row.pid, row.status]),
      [
        ['one', after[0], 'running'],
        ['two', after[1], 'running'],
      ],
    );
    const deleted = await daemon(['delete', file]);
    assert.deepEqual([deleted.code, deleted.stdout], [0, `one: stopped ${after[0]}\ndeleted one\ntwo: stopped ${after[1]}\ndeleted two\n`]);
    assert.equal((await daemon(['status', file])).code, 3);
    // A file the rule takes is a FILE, never a NAME or a script; after `--` it is a script.
    const tool = script(dir, 'tool.config.js', idle);
    const asFile = await daemon(['start', tool]);
    assert.deepEqual(
      [asFile.code, asFile.stderr],
      [1, "daemon: tool.config.js: its export must be an object with an apps array (pm2's ecosystem file), not an instance of Object\n"],
    );
    const asScript = await daemon(['start', '--name', 'x', '--', tool]);
    assert.equal(asScript.code, 0, asScript.stderr);
  } finally {
    for (const pid of pidsOf(state, ['one', 'two', 'x'])) await killAndWait(pid);
  }
});

test('root loads only a fleet file no other user can change, as it reads a record: owner, mode, links, the directories and symlinks on the way', async () => {
  const { dir, state, daemon } = workspace('fleet-trust', 0o755);
  script(dir, 'app.js', idle);
  const good = script(dir, 'good.config.js', "module.exports = { apps: [{ name: 'ok', script: 'app.js' }] };\n");
  const open = path.join(dir, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  const bad = path.join(dir, 'bad.config.js');
  const link = path.join(dir, 'link.config.js');
  const cases = [
    [
      'owned by nobody',
      () => fs.chownSync(bad, NOBODY, NOBODY),
      /^daemon: EPERM: the file is owned by uid 65534, not root or this user, open '\S+bad\.config\.js'/,
    ],
    ['writable by others', () => fs.chmodSync(bad, 0o666), /^daemon: EPERM: the file is writable by others \(mode 0666\)/],
    ['with a second link', () => fs.linkSync(bad, path.join(dir, 'second')), /^daemon: EPERM: the file has 2 links/],
  ];
  try {
    for (const [what, spoil, said] of cases) {
      fs.copyFileSync(good, bad);
      spoil();
      const refused = await daemon(['start', bad]);
      assert.equal(refused.code, 1, what);
      assert.match(refused.stderr, said, what);
      assert.match(refused.stderr, /: root loads only a fleet file that no other user can change\n$/, what);
      fs.rmSync(bad);
      fs.rmSync(path.join(dir, 'second'), { force: true });
    }
    // In a directory anyone may write to (not sticky); a symlink (another user's, or root's: a record is never one).
    const inOpen = script(open, 'apps.config.js', "module.exports = { apps: [{ name: 'ok', script: '../app.js' }] };\n");
    assert.match((await daemon(['start', inOpen])).stderr, /^daemon: EPERM: .*may be written by others \(mode 0777\)/);
    fs.symlinkSync(good, link);
    assert.match((await daemon(['start', link])).stderr, /^daemon: ELOOP: the file is a symlink/);
    fs.lchownSync(link, NOBODY, NOBODY);
    assert.match((await daemon(['start', link])).stderr, /^daemon: ELOOP: the file is a symlink/);
    assert.deepEqual(fs.existsSync(state) ? fs.readdirSync(state) : [], [], 'nothing started');
    // Root's own file loads; another user loads its own (the check is root's).
    assert.equal((await daemon(['start', good])).code, 0);
    assert.equal((await daemon(['stop', good])).code, 0);
    const own = path.join(dir, 'nobody');
    fs.mkdirSync(own);
    fs.chownSync(own, NOBODY, NOBODY);
    const theirs = script(own, 'theirs.config.js', "module.exports = { apps: [{ name: 'theirs', script: '../app.js' }] };\n");
    fs.chownSync(theirs, NOBODY, NOBODY);
    fs.chmodSync(theirs, 0o666);
    // nobody runs a world-readable copy of the command (a checkout may sit in a 0700 directory).
    const asThem = await daemon(['status', theirs], {
      prefix: asNobody,
      cli: path.join(publicCopy(), 'bin', 'daemon.js'),
      cwd: own,
      env: { DAEMON_DIR: path.join(own, 'state') },
    });
    assert.deepEqual([asThem.code, asThem.stderr], [3, '']);
  } finally {
    for (const pid of pidsOf(state, ['ok'])) await killAndWait(pid);
  }
});
