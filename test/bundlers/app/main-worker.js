// Page entry for the bundled worker: the pattern webpack 5, Vite and Parcel
// recognise and turn into a separate worker bundle.
import { publishFromWorker } from './page-report.js';

publishFromWorker(new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
