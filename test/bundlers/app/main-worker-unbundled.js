// Page entry for the worker served as plain files: workers do not see the
// page's import map, so this worker's copy of run-ema.js imports the package
// by URL (the harness rewrites the specifier when it writes the app).
import { publishFromWorker } from './page-report.js';

publishFromWorker(new Worker('/worker.js', { type: 'module' }));
