// A user's ES module: `import` of ema-wasm and ema-wasm/node, which must
// resolve to the ESM sources in js/ on every Node. Arguments: the inputs file
// and a folder for checkpoints. Prints one JSON line.
import { createRequire } from 'node:module';

import { createEma, loadEma, readMetadata } from 'ema-wasm';
import { loadEmaFile, saveEmaFile } from 'ema-wasm/node';

const require = createRequire(import.meta.url);
const { exercise, packageFilesInRequireCache } = require('./exercise.cjs');

const result = await exercise({ createEma, loadEma, readMetadata, saveEmaFile, loadEmaFile },
  process.argv[2], process.argv[3]);
console.log(JSON.stringify({ ...result, requiredFiles: packageFilesInRequireCache() }));
