#!/usr/bin/env node
'use strict';
// The `daemon` command: start, stop, restart, reload, list and ask about
// scripts that need not use this module themselves (lib/cli/ does it all).

// lib/'s files load through lib/shared/loader.js, a faster require() for them.
require('../lib/shared/loader.js').requireFrom(__filename)('../lib/cli/main.js').cli(process.argv.slice(2));
