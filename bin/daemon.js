#!/usr/bin/env node
'use strict';
// The `daemon` command: start, stop, restart, reload, list and ask about
// scripts that need not use this module themselves (lib/cli/ does it all).

require('../lib/cli/main.js').cli(process.argv.slice(2));
