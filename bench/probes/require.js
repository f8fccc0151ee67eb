// Prints how long require(argv[2]) takes in this fresh process, in ms.
'use strict';
const spec = process.argv[2];
const t0 = process.hrtime.bigint();
require(spec);
const t1 = process.hrtime.bigint();
process.stdout.write(`${Number(t1 - t0) / 1e6}\n`);
