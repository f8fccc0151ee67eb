'use strict';
// The compiled addon, found at require() and loaded on first use (none on
// Windows, which has no Unix daemons).

const { unsupported } = require('./errors.js');
const { addonPath, load, supervisorPath } = require('../native.js');

const windows = process.platform === 'win32';
// Found now: a missing addon fails require('daemon'), and Node's resolution
// of a prebuilt package could not run later under a polluted Object.prototype.
if (!windows) addonPath();

/** The addon, loaded on the first call (it costs a millisecond), or null on Windows. */
function native() {
  return windows ? null : load();
}

/** The addon, or a clear error where `fn` cannot work. */
function nativeFor(fn) {
  if (windows) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', `${fn}() is not supported on Windows`);
  return load();
}

module.exports = { native, nativeFor, supervisorPath };
