// An empty module: what the first require() in a fresh process costs by itself.
'use strict';
