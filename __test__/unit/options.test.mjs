// Fast unit tests of the pure JS parts: option schemas, argument checks,
// Node's command line, the environment table, the export list. No process
// is started.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', '..');
// The generic checks and stop()'s schema, and the starting calls' schemas.
const options = {
  ...require(path.join(root, 'lib', 'shared', 'options.js')),
  ...require(path.join(root, 'lib', 'launcher', 'start-options.js')),
};
const { anchoredArgs, evaluated } = require(path.join(root, 'lib', 'shared', 'node-options.js'));
const { ENV } = require(path.join(root, 'lib', 'shared', 'env.js'));
const { describeValue } = require(path.join(root, 'lib', 'shared', 'errors.js'));
const { native } = require(path.join(root, 'lib', 'shared', 'native.js'));

test('startOptions: defaults, in an object without a prototype', () => {
  const opts = options.startOptions(undefined);
  assert.equal(Object.getPrototypeOf(opts), null);
  assert.equal(opts.cwd, '/');
  assert.equal(opts.umask, 0o022);
  assert.equal(opts.ready, 'auto');
  assert.equal(opts.readyTimeout, 30000);
  assert.equal(opts.foreground, false);
  assert.equal(opts.preventCore, false);
  assert.equal(opts.stdout, undefined);
  assert.equal(opts.syslog.facility, 'daemon');
});

test('startOptions: paths resolved, syslog kept, env as entries', () => {
  const opts = options.startOptions({ cwd: 'x', stdout: 'syslog', stderr: 'e.log', env: { A: 1, B: undefined } });
  assert.equal(opts.cwd, path.resolve('x'));
  assert.equal(opts.stdout, 'syslog');
  assert.equal(opts.stderr, path.resolve('e.log'));
  assert.deepEqual(opts.env, ['A=1']);
});

test('startOptions: inherited properties are not options', () => {
  const inherited = Object.create({ cwd: '/etc', umask: 0, user: 'nobody', readyTimeout: 1, env: { X: '1' } });
  const opts = options.startOptions(inherited);
  assert.equal(opts.cwd, '/');
  assert.equal(opts.umask, 0o022);
  assert.equal(opts.user, undefined);
  assert.equal(opts.readyTimeout, 30000);
  assert.equal(opts.env, undefined);
});

test('startOptions: wrong types and values throw coded errors', () => {
  const cases = [
    [{ cwd: 1 }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ umask: 0o1000 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ ready: null }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ env: { A: Symbol('s') } }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ env: { 'A=B': '1' } }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ nope: 1 }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ user: 2 ** 32 - 1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    ['x', TypeError, 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [input, Class, code] of cases) {
    assert.throws(
      () => options.startOptions(input),
      (e) => e instanceof Class && e.code === code,
      JSON.stringify(input),
    );
  }
});

test('stopOptions: defaults and a null signal refused', () => {
  assert.deepEqual({ ...options.stopOptions() }, { signal: 15, timeout: 10000, kill: true });
  assert.throws(() => options.stopOptions({ signal: null }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => options.stopOptions({ signal: 'toString' }), { code: 'ERR_UNKNOWN_SIGNAL' });
});

test('defaultIdent: the script name without extension, else node', () => {
  assert.equal(options.defaultIdent('/srv/hellohttpd.js'), 'hellohttpd');
  assert.equal(options.defaultIdent('/srv/app.mjs'), 'app');
  assert.equal(options.defaultIdent('-'), 'node');
  assert.equal(options.defaultIdent('/srv/has space.js'), 'node');
});

test('anchoredArgs: relative Node option paths become absolute, packages and others stay', () => {
  const resolve = (request) => `/resolved/${request}`;
  const args = ['-r', './pre.js', '--import=../x.mjs', '--env-file', '.env', '-r', 'pkg', '--import', 'pkg2', '--max-old-space-size=64'];
  assert.deepEqual(anchoredArgs(args, '/boot', resolve), [
    '-r',
    '/boot/pre.js',
    '--import=/x.mjs',
    '--env-file',
    '/boot/.env',
    '-r',
    '/resolved/pkg',
    '--import',
    'pkg2',
    '--max-old-space-size=64',
  ]);
});

test('evaluated: -e, --eval, -p, --print', () => {
  assert.equal(evaluated(['-e']), true);
  assert.equal(evaluated(['--print=1']), true);
  assert.equal(evaluated(['--enable-source-maps']), false);
});

test('describeValue: as Node shows a received value', () => {
  assert.equal(describeValue('abc'), "type string ('abc')");
  assert.equal(describeValue(Object.create(null)), 'an instance of Object');
  assert.equal(describeValue(Symbol('s')), 'type symbol (Symbol(s))');
  assert.equal(describeValue([]), 'an instance of Array');
});

test("the environment table's marker is the addon's", () => {
  assert.equal(ENV.READY_PIPE, native().READY_ENV);
});

test('every export is a named ESM import, the default import is the callable, and the CJS export has exactly them', async () => {
  const names = [
    'start',
    'ready',
    'closeIO',
    'lock',
    'status',
    'stop',
    'signal',
    'upgrade',
    'scale',
    'reopenLogs',
    'dropPrivileges',
    'chroot',
    'syslog',
    'lost',
    'isDaemon',
    'spawn',
    'daemon',
    'listeners',
  ];
  const esm = await import(path.join(root, 'index.js'));
  const cjs = require(path.join(root, 'index.js'));
  for (const name of names) {
    assert.ok(Object.hasOwn(esm, name), `import { ${name} } from 'daemon'`);
    assert.equal(esm[name], cjs[name], name);
  }
  assert.equal(typeof cjs, 'function', "require('daemon')(options), as in 1.x");
  assert.equal(esm.default, cjs);
  assert.deepEqual(Object.keys(cjs).sort(), [...names].sort());
});

test('stdout and stderr: a path, a descriptor, an open stream, or a keyword (never a file name)', () => {
  const given = (stdout) => options.startOptions({ stdout }).stdout;
  assert.equal(given('out.log'), path.resolve('out.log'));
  assert.equal(given('./inherit'), path.resolve('inherit'));
  assert.equal(given(7), 7);
  assert.equal(given({ fd: 9 }), 9, 'an fs.WriteStream after its open');
  assert.equal(given('ignore'), 'ignore');
  assert.equal(given('inherit'), undefined, 'inherited: what no option means');
  assert.equal(given('syslog'), 'syslog');
  const refused = [
    ['pipe', TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ fd: null }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [Object.create({ fd: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ fd: '1' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [-1, RangeError, 'ERR_OUT_OF_RANGE'],
    [1.5, RangeError, 'ERR_OUT_OF_RANGE'],
    [null, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[1], TypeError, 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [value, Class, code] of refused) {
    assert.throws(
      () => given(value),
      (e) => e instanceof Class && e.code === code,
      String(value),
    );
  }
});

test("the callable's options: 1.x's defaults (the working directory, no output); start() keeps '/' and inherits", () => {
  const compat = options.compatOptions(undefined);
  assert.equal(Object.getPrototypeOf(compat), null);
  assert.deepEqual([compat.cwd, compat.stdout, compat.stderr], [process.cwd(), 'ignore', 'ignore']);
  assert.equal(options.compatOptions({ stdout: 'inherit' }).stdout, undefined);
  const start = options.startOptions(undefined);
  assert.deepEqual([start.cwd, start.stdout, start.stderr], ['/', undefined, undefined]);
  assert.throws(() => options.compatOptions({ stdio: 'ignore' }), /is not an option of daemon\(\)/);
});

test("spawn()'s options: start()'s without foreground, the syslog tag the script's; daemon.daemon()'s with 1.x's defaults", () => {
  const spawned = options.spawnOptions({ ready: 'manual' }, '/srv/worker.js');
  assert.deepEqual([spawned.cwd, spawned.ready, spawned.syslog.ident], ['/', 'manual', 'worker']);
  assert.throws(() => options.spawnOptions({ foreground: true }, '/srv/worker.js'), { code: 'ERR_INVALID_ARG_VALUE' });
  const compat = options.spawnCompatOptions(Object.create({ cwd: '/etc' }), '/srv/worker.js');
  assert.deepEqual([compat.cwd, compat.stdout], [process.cwd(), 'ignore']);
});

test('checkCommand: the script resolved, the arguments strings without null bytes', () => {
  assert.deepEqual(options.checkCommand('w.js', ['a b', 'c']), [path.resolve('w.js'), 'a b', 'c']);
  assert.deepEqual(options.checkCommand('/w.js'), ['/w.js']);
  assert.throws(() => options.checkCommand('/w.js', 'a b'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => options.checkCommand('/w.js', [1]), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => options.checkCommand('/w.js', ['a\0b']), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => options.checkCommand(undefined), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('startOptions: respawn is true, false or { instances, limit, window, killTimeout }; a pid file is a path', () => {
  const defaults = {
    instances: 1,
    limit: 10,
    window: 60000,
    killTimeout: 5000,
    maxMemory: undefined,
    logMaxSize: undefined,
    logKeep: 5,
    logCompress: false,
  };
  assert.deepEqual({ ...options.startOptions({ respawn: true }).respawn }, defaults);
  assert.equal(options.startOptions({ respawn: false }).respawn, undefined);
  assert.equal(options.startOptions({}).respawn, undefined);
  assert.deepEqual({ ...options.startOptions({ respawn: { limit: 3 } }).respawn }, { ...defaults, limit: 3 });
  assert.deepEqual({ ...options.startOptions({ respawn: { window: 5 } }).respawn }, { ...defaults, window: 5 });
  assert.deepEqual(
    { ...options.startOptions({ respawn: { instances: 4, killTimeout: 100 } }).respawn },
    { ...defaults, instances: 4, killTimeout: 100 },
  );
  assert.equal(options.startOptions({ respawn: { instances: 'max' } }).respawn.instances, os.availableParallelism());
  for (const [given, bytes] of [
    [1000, 1000],
    ['1000', 1000],
    ['64K', 65536],
    ['200m', 209715200],
    ['2G', 2147483648],
  ]) {
    assert.equal(options.startOptions({ respawn: { maxMemory: given } }).respawn.maxMemory, bytes, String(given));
  }
  assert.equal(options.startOptions({ pidfile: 'x.pid' }).pidfile, path.resolve('x.pid'));
  const inherited = Object.create({ limit: 0 });
  assert.equal(options.startOptions({ respawn: inherited }).respawn.limit, 10, 'own properties only');
});

test('startOptions: bad respawn options are TypeError or RangeError', () => {
  const code = (respawn) => {
    try {
      options.startOptions({ respawn });
    } catch (error) {
      return `${error.name} ${error.code}`;
    }
    return 'accepted';
  };
  for (const bad of [1, 'yes', null, [], () => {}]) assert.equal(code(bad), 'TypeError ERR_INVALID_ARG_TYPE', String(bad));
  assert.equal(code({ limit: '3' }), 'TypeError ERR_INVALID_ARG_TYPE');
  assert.equal(code({ retries: 3 }), 'TypeError ERR_INVALID_ARG_VALUE');
  assert.equal(code({ instances: 'many' }), 'TypeError ERR_INVALID_ARG_VALUE');
  assert.equal(code({ instances: '2' }), 'TypeError ERR_INVALID_ARG_VALUE');
  assert.equal(code({ maxMemory: '2X' }), 'TypeError ERR_INVALID_ARG_VALUE');
  assert.equal(code({ maxMemory: '1.5G' }), 'TypeError ERR_INVALID_ARG_VALUE');
  assert.equal(code({ maxMemory: {} }), 'TypeError ERR_INVALID_ARG_TYPE');
  assert.equal(code({ maxMemory: 0 }), 'RangeError ERR_OUT_OF_RANGE');
  for (const bad of [
    { limit: 0 },
    { limit: 1.5 },
    { limit: -1 },
    { window: 0 },
    { window: 2 ** 31 },
    { instances: 0 },
    { instances: -1 },
    { instances: 1.5 },
    { instances: 1025 },
    { killTimeout: 0 },
  ]) {
    assert.equal(code(bad), 'RangeError ERR_OUT_OF_RANGE', JSON.stringify(bad));
  }
  assert.throws(() => options.startOptions({ pidfile: 3 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => options.startOptions({ pidfile: '' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
});

test('startOptions: respawn with listen: the supervisor holds the sockets', () => {
  const opts = options.startOptions({ respawn: true, listen: ['8080'] });
  assert.deepEqual([opts.respawn.limit, opts.listen.length], [10, 1]);
});
