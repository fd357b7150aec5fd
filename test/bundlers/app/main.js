// Page entry: runs the EMA in the page itself.
import { publish } from './page-report.js';
import { runEma } from './run-ema.js';

publish(runEma());
