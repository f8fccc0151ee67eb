'use strict';
// The compiled addon, loaded once (null on Windows, which has no Unix daemons).

const { unsupported } = require('./errors.js');

const native = process.platform === 'win32' ? null : require('../native.js').load();

/** The addon, or a clear error where `fn` cannot work. */
function nativeFor(fn) {
  if (native === null) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', `${fn}() is not supported on Windows`);
  return native;
}

module.exports = { native, nativeFor };
