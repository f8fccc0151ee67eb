// Fast unit tests of the pure JS parts: option schemas, argument checks,
// Node's command line, the environment table, the export list. No process
// is started.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', '..');
const options = require(path.join(root, 'lib', 'options.js'));
const { anchoredArgs, evaluated } = require(path.join(root, 'lib', 'node-options.js'));
const { ENV } = require(path.join(root, 'lib', 'env.js'));
const { describeValue } = require(path.join(root, 'lib', 'errors.js'));
const { native } = require(path.join(root, 'lib', 'native.js'));

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
  assert.equal(ENV.READY_PIPE, native.READY_ENV);
});

test('every export is a named ESM import, and the CJS object has exactly them', async () => {
  const names = [
    'start',
    'ready',
    'closeIO',
    'lock',
    'status',
    'stop',
    'signal',
    'reopenLogs',
    'dropPrivileges',
    'chroot',
    'syslog',
    'lost',
    'isDaemon',
    'listeners',
  ];
  const esm = await import(path.join(root, 'index.js'));
  for (const name of names) assert.ok(Object.hasOwn(esm, name), `import { ${name} } from 'daemon'`);
  assert.deepEqual(Object.keys(require(path.join(root, 'index.js'))).sort(), [...names].sort());
});
