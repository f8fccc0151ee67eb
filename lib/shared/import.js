'use strict';
// Node's import() of an ES module for lib/'s files: they are compiled by
// lib/shared/loader.js, whose code cannot import() without
// --experimental-vm-modules, so this one file is loaded by Node's require().

/** The namespace of the ES module at `url` (a file: URL). */
module.exports = (url) => import(url);
