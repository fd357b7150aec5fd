// Worker entry: runs the EMA in a module worker and posts the outcome.
import { describeError } from './describe-error.js';
import { runEma } from './run-ema.js';

runEma().then(
  (report) => postMessage({ report }),
  (error) => postMessage({ error: describeError(error) }),
);
