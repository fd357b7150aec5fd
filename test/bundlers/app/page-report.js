// Puts an app's outcome where the Node test looks for it: the report on
// window.__emaReport, or an error string on window.__emaError.
import { describeError } from './describe-error.js';

export function publish(promise) {
  promise.then(
    (report) => {
      window.__emaReport = report;
    },
    (error) => {
      window.__emaError = describeError(error);
    },
  );
}

/** Relays what a worker posts (see worker.js), and its load or runtime errors. */
export function publishFromWorker(worker) {
  worker.addEventListener('message', ({ data }) => {
    if (data.error !== undefined) window.__emaError = `in the worker: ${data.error}`;
    else window.__emaReport = data.report;
  });
  // A worker whose script fails to load or throws at top level fires 'error'
  // on the Worker object; the page would otherwise wait forever.
  worker.addEventListener('error', (event) => {
    window.__emaError = `worker error event: ${event.message || 'the worker script failed to load or evaluate'}`;
  });
  worker.addEventListener('messageerror', () => {
    window.__emaError = 'worker messageerror: the report could not be deserialised';
  });
}
