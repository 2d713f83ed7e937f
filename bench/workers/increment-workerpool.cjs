const workerpool = require('workerpool');
workerpool.worker({ increment: (x) => x + 1 });
