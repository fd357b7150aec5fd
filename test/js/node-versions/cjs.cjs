// A user's CommonJS script: `require()` of ema-wasm and ema-wasm/node, which
// must resolve to the CommonJS copy in dist/cjs/ (Node 18 and 20 before 20.19
// cannot require() an ES module). Arguments: the inputs file and a folder for
// checkpoints. Prints one JSON line.
'use strict';

const { createEma, loadEma, readMetadata } = require('ema-wasm');
const { saveEmaFile, loadEmaFile } = require('ema-wasm/node');
const { exercise, packageFilesInRequireCache } = require('./exercise.cjs');

exercise({ createEma, loadEma, readMetadata, saveEmaFile, loadEmaFile }, process.argv[2], process.argv[3]).then(
  (result) => {
    console.log(JSON.stringify({
      ...result,
      resolved: { main: require.resolve('ema-wasm'), node: require.resolve('ema-wasm/node') },
      requiredFiles: packageFilesInRequireCache(),
    }));
  },
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
