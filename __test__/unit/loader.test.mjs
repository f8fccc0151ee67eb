// lib/shared/loader.js, the way lib/'s files load one another: one module
// per file whichever loader came first, lib/ in the realm of the code that
// required it, and Node's loader for the ESM loader's own entries. Each case
// runs in a fresh Node (module caches are the process's).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const READINESS = path.join(ROOT, 'lib', 'daemon', 'readiness.js');

/** What `code` (CommonJS) prints in a fresh Node. */
function runCjs(code) {
  return execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' }).trim();
}

test("one module per file: the loader's and Node's require() give the same one, whichever came first", () => {
  const loaderFirst = `const d = require(${JSON.stringify(ROOT)}); console.log(require(${JSON.stringify(READINESS)}).ready === d.ready);`;
  const nodeFirst = `const r = require(${JSON.stringify(READINESS)}); console.log(require(${JSON.stringify(ROOT)}).ready === r.ready);`;
  assert.deepEqual([runCjs(loaderFirst), runCjs(nodeFirst)], ['true', 'true']);
});

test("code run in a vm context of its own (Jest's way) gets lib/'s errors in its own realm", () => {
  // A loader as Jest's: each file compiled in the context, builtins from the main realm.
  const harness = `
    const vm = require('node:vm'), fs = require('node:fs'), path = require('node:path');
    const context = vm.createContext({ process, console, Buffer, setImmediate, setTimeout, clearTimeout, queueMicrotask });
    const cache = {};
    function load(file) {
      if (cache[file]) return cache[file].exports;
      const module = (cache[file] = { exports: {}, filename: file, loaded: false });
      const params = ['exports', 'require', 'module', '__filename', '__dirname'];
      const run = vm.compileFunction(fs.readFileSync(file, 'utf8'), params, { filename: file, parsingContext: context });
      const own = (request) => (request.startsWith('.') || request.startsWith('/') ? load(require.resolve(path.resolve(path.dirname(file), request))) : require(request));
      own.resolve = (request, options) => require.resolve(request, options);
      own.cache = cache;
      run.call(module.exports, module.exports, own, module, file, path.dirname(file));
      module.loaded = true;
      return module.exports;
    }
    const daemon = load(${JSON.stringify(path.join(ROOT, 'index.js'))});
    try { daemon.lock(42); } catch (error) { console.log(error instanceof vm.runInContext('TypeError', context), error.code); }
  `;
  assert.equal(runCjs(harness), 'true ERR_INVALID_ARG_TYPE');
});

test("a file the ESM loader has entered but not run yet is loaded, not taken for a circle's half-made module", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-loader-'));
  try {
    const file = path.join(dir, 'both.mjs');
    fs.writeFileSync(
      file,
      `import daemon from ${JSON.stringify(path.join(ROOT, 'index.js'))};\nimport * as readiness from ${JSON.stringify(READINESS)};\nconsole.log(typeof daemon.isDaemon, daemon.ready === readiness.ready);\n`,
    );
    assert.equal(execFileSync(process.execPath, [file], { encoding: 'utf8' }).trim(), 'boolean true');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("under a module hook that gives CommonJS files their source (module.register()), whose require() has no cache, lib/ loads through Node's", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-loader-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'hooks.mjs'),
      "import fs from 'node:fs';\nexport async function load(url, context, next) {\n  const loaded = await next(url, context);\n  if (loaded.format === 'commonjs' && loaded.source == null) loaded.source = fs.readFileSync(new URL(url), 'utf8');\n  return loaded;\n}\n",
    );
    fs.writeFileSync(
      path.join(dir, 'register.mjs'),
      "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n",
    );
    fs.writeFileSync(
      path.join(dir, 'app.cjs'),
      `const daemon = require(${JSON.stringify(ROOT)});\nconsole.log(typeof daemon.lock, typeof daemon.start);\n`,
    );
    const out = execFileSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), path.join(dir, 'app.cjs')], {
      encoding: 'utf8',
    });
    assert.equal(out.trim(), 'function function');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('import() is called from lib/shared/import.js alone: code the loader compiles cannot import', () => {
  const lib = path.join(ROOT, 'lib');
  const callers = fs
    .readdirSync(lib, { recursive: true })
    .filter((name) => name.endsWith('.js'))
    .filter((name) => {
      // The code without its comments and strings' contents is enough here: lib/ has no `import(` in a string.
      const code = fs
        .readFileSync(path.join(lib, name), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      return /\bimport\s*\(/.test(code);
    });
  assert.deepEqual(callers, [path.join('shared', 'import.js')]);
});

test("a circle through Node's require() leaves no warning on a module the loader ran, and a prototype the module chose stays", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-loader-'));
  try {
    // a.js (the loader's) has Node's require() load b.js, which requires a.js while it runs.
    fs.writeFileSync(path.join(dir, 'a.js'), "exports.early = 1;\nrequire('node:module').createRequire(__filename)('./b.js');\n");
    fs.writeFileSync(path.join(dir, 'b.js'), "require('./a.js');\n");
    // c.js gives its exports a prototype of its own, which stays.
    fs.writeFileSync(path.join(dir, 'c.js'), "Object.setPrototypeOf(exports, { hello: () => 'hi' });\n");
    const loader = path.join(ROOT, 'lib', 'shared', 'loader.js');
    const code = `const own = require(${JSON.stringify(loader)}).requireFrom(${JSON.stringify(path.join(dir, 'main.js'))}); const a = own('./a.js'); console.log(a.early, a.missing, own('./c.js').hello());`;
    const run = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    assert.deepEqual([run.stdout.trim(), run.stderr], ['1 undefined hi', '']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
