'use strict';
// The compiled addon's loader under the name that scripts/install.js, the
// tests and the bench know: lib/shared/native.js.

const { platformTriple, native, supervisorPath } = require('./lib/shared/native.js');

module.exports = { platformTriple, load: native, supervisorPath };
