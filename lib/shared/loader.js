'use strict';
// How lib/'s files load one another: each file read and compiled here, once,
// and entered in Node's require cache, so that require() of the same file
// elsewhere (the command's entry, a test) gets the same module, and this
// loader takes what require() loaded first. Why not require() itself: Node's
// loader spends 0.15 to 0.4 ms on each file (resolution, the package scope,
// its Module steps) where this spends about 0.1, and a daemon loads 10 of
// lib/'s files before its first answer, its launcher 11
// (docs/performance.md). Only relative requests of `.js` files go this way;
// builtins and packages go to Node's require().

const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const vm = require('node:vm');
const { isProxy } = require('node:util').types;
const { ENV } = require('./env.js');

/** The parameters Node's CommonJS wrapper gives a file. */
const PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];

/**
 * Where Node's own loader must load every file: Bun and Deno (this reproduces
 * Node's CommonJS); code in another realm than the one compileFunction()
 * runs in (Jest runs files in a vm context of its own: lib/'s errors and
 * arrays would be the main realm's, and `instanceof TypeError` false there);
 * `node --watch`, which watches the files Node's loader loads; a process
 * whose file reads Node checks (the permission model, a policy manifest);
 * and a file whose source a module hook gave (`module.register()`): Node
 * hands it a require() with no cache.
 */
const nodeLoadsAll =
  require.cache === undefined ||
  process.versions.bun !== undefined ||
  process.versions.deno !== undefined ||
  vm.compileFunction('return Object', [])() !== Object ||
  process.env[ENV.WATCH] !== undefined ||
  process.permission !== undefined ||
  [...process.execArgv, process.env[ENV.NODE_OPTIONS] ?? ''].some((arg) => arg.includes('--experimental-policy'));

/** The one file Node's loader loads: it calls import(), which code compileFunction() compiles cannot. */
const IMPORTER = path.join(__dirname, 'import.js');

/** The files this loader is running now: a request for one of them is circular. */
const running = new Set();

/** The module of `file` (an absolute path), loaded on its first request. */
function loadFile(file) {
  if (nodeLoadsAll) return require(file);
  const cached = require.cache[file];
  if (cached !== undefined && (cached.loaded || running.has(file))) return cached.exports;
  // Not loaded yet by another (Node's require() of a circle, the ESM loader's
  // entry for a file it has not run): Node's loader knows which it is.
  if (cached !== undefined) return require(file);
  if (file === IMPORTER) return require(file);
  const source = fs.readFileSync(file, 'utf8');
  const module = new Module(file);
  module.filename = file;
  // Before it runs, as Node does: a circular request gets what it exported so far.
  require.cache[file] = module;
  running.add(file);
  try {
    // A prototype-less options object: a polluted Object.prototype supplies no option.
    const wrapper = vm.compileFunction(source, PARAMS, { __proto__: null, filename: file });
    const { exports } = module;
    wrapper.call(exports, exports, requireFrom(file), module, file, path.dirname(file));
    // A require() through Node's loader of this file while it ran gave its
    // exports the prototype that warns of a circle (a Proxy); Node's loader
    // takes it off the modules it loads itself, this one is ours to.
    if (module.exports === exports && isProxy(Object.getPrototypeOf(exports))) Object.setPrototypeOf(exports, Object.prototype);
  } catch (error) {
    delete require.cache[file];
    throw error;
  } finally {
    running.delete(file);
  }
  module.loaded = true;
  return module.exports;
}

/** The `require` that the file at `file` gets: lib/'s own `.js` files here, the rest through Node's. */
function requireFrom(file) {
  const dir = path.dirname(file);
  let nodeRequire;
  const viaNode = () => {
    nodeRequire ??= Module.createRequire(file);
    return nodeRequire;
  };
  const requireOwn = (request) => {
    if (request.startsWith('node:')) return require(request);
    if ((request.startsWith('./') || request.startsWith('../')) && request.endsWith('.js')) return loadFile(path.resolve(dir, request));
    return viaNode()(request);
  };
  requireOwn.resolve = (request, options) => viaNode().resolve(request, options);
  return requireOwn;
}

module.exports = { requireFrom };
