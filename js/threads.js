// Threads: a pool of workers that share an EMA's step with the calling
// thread, over the EMA's shared memory (the threads build).
//
// One pool per JavaScript agent (page, worker or Node thread), made on first
// use and grown when an EMA asks for more threads. Each job is one step of
// one EMA, cut into tasks that every thread claims one at a time from a
// shared counter: staged windows of the caller's arrays (the copy-in path,
// pipelined: the calling thread stages window after window while workers
// apply the earlier ones, and helps when the ring of windows is full), or
// ranges of the parameter region (resident parameters, or the mirror of a
// background step). Claiming, rather than a fixed split, means a worker
// that is slow, busy or gone costs speed, not results: the calling thread
// takes whatever is left. Only a worker that dies holding a claim can leave
// a task half done; that is found by its claim standing still, and the EMA
// then refuses further use (threads.js cannot tell how much was written).
//
// The control block is a SharedArrayBuffer of Int32 words (CONTROL). Jobs
// are numbered; a worker enters job j only while it is open, and the
// calling thread closes j (CLOSED = j) and waits for every worker to leave
// (ACTIVE = 0) before it writes the next job's fields.

import { threadWorkerSource } from './wasm/thread-worker-source.js';

/** Word indices of the control block (thread-worker.js repeats them). */
export const CONTROL = Object.freeze({
  WAKE: 0, JOB: 1, CLOSED: 2, EMA: 3, MODE: 4, NEXT: 5, PUBLISHED: 6, TOTAL: 7, DONE: 8, FAILED: 9, ACTIVE: 10,
  CHUNK: 11, FLOATS: 12, PLAN: 13, RING: 14, STAGING: 15, STAGING_FLOATS: 16, CONTEXT: 17,
  BUSY: 32, YIELD: 96, CLAIM: 160,
});
const CONTROL_WORDS = 256;
export const MODE_WINDOWS = 1;
const MODE_RANGES = 2;
/** Staging windows a copy-in job cycles through (BUSY has a word for each). */
export const MAX_RING = 64;
/** Workers a pool keeps at most (YIELD and CLAIM have a word for each). */
export const MAX_WORKERS = 63;
/**
 * Settings tests change: how long a claim may stand still before its
 * worker counts as dead, how long a worker may take to start or to
 * instantiate an EMA's module, and how workers are spawned.
 */
export const threadSettings = { stallMs: 10000, startTimeoutMs: 15000, spawn: null };

// Node's process, reached through globalThis: a bare `process.x` makes
// bundlers (Parcel) look for a polyfill, and the browser build has none.
const nodeProcess = typeof globalThis.process === 'object' ? globalThis.process : undefined;
const nodeWorkerThreads =
  typeof nodeProcess?.getBuiltinModule === 'function' ? nodeProcess.getBuiltinModule('node:worker_threads') : undefined;

/**
 * Why this runtime cannot run the threads build, or null when it can: it
 * needs shared WebAssembly memory and workers (Node's worker_threads, or a
 * browser's Worker in a cross-origin isolated page).
 */
export function threadsUnavailableReason() {
  if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') {
    return typeof crossOriginIsolated === 'boolean' && !crossOriginIsolated
      ? 'the page is not cross-origin isolated (serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)'
      : 'this runtime has no SharedArrayBuffer';
  }
  if (nodeWorkerThreads === undefined && typeof Worker !== 'function') {
    return typeof nodeProcess?.versions?.node === 'string'
      ? 'this Node.js has no process.getBuiltinModule (Node.js 20.16 or later has it)'
      : 'this runtime has no Worker';
  }
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (error) {
    return `this runtime cannot make a shared WebAssembly memory (${error.message})`;
  }
  return null;
}

/** How many threads 'auto' means here: the cores the runtime reports, at most MAX_WORKERS + 1. */
export function availableThreads() {
  let cores = 1;
  if (nodeWorkerThreads !== undefined) {
    const os = nodeProcess.getBuiltinModule('node:os');
    cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  } else if (typeof navigator === 'object' && Number.isInteger(navigator?.hardwareConcurrency)) {
    cores = navigator.hardwareConcurrency;
  }
  return Math.max(1, Math.min(cores, MAX_WORKERS + 1));
}

// Whether this thread may block in Atomics.wait: not a browser's main thread.
let blockingAllowed;
function canBlock() {
  if (blockingAllowed === undefined) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      blockingAllowed = true;
    } catch {
      blockingAllowed = false;
    }
  }
  return blockingAllowed;
}

/** Waits until word `index` may have left `value`, for at most `ms` (spinning where blocking is not allowed). */
function pause(control, index, value, ms) {
  if (canBlock()) {
    Atomics.wait(control, index, value, ms);
    return;
  }
  const until = performance.now() + ms;
  while (Atomics.load(control, index) === value && performance.now() < until);
}

// thread-worker.js's function as text, made by the build (a bundler may rewrite the function itself).
const WORKER_SOURCE_BODY = `(${threadWorkerSource})`;

/** Starts one worker running threadWorkerMain; returns { post, terminate, onMessage, onExit }. */
function spawnWorker(name) {
  if (nodeWorkerThreads !== undefined) {
    // process.getBuiltinModule, not require: a worker inherits --input-type=module.
    const source =
      "const { parentPort } = process.getBuiltinModule('node:worker_threads');\n" +
      `${WORKER_SOURCE_BODY}((handler) => parentPort.on('message', handler), (message) => parentPort.postMessage(message));\n`;
    const worker = new nodeWorkerThreads.Worker(source, { eval: true, name });
    // unref() after each listener: adding a 'message' listener refs the
    // worker again, and a referenced worker keeps the process from exiting.
    return {
      post: (message) => worker.postMessage(message),
      terminate: () => worker.terminate(),
      onMessage: (handler) => {
        worker.on('message', handler);
        worker.unref();
      },
      onExit: (handler) => {
        worker.on('error', (error) => handler(error));
        worker.on('exit', (code) => handler(new Error(`the worker exited with code ${code}`)));
        worker.unref();
      },
    };
  }
  const source =
    `${WORKER_SOURCE_BODY}((handler) => self.addEventListener('message', (event) => handler(event.data)), ` +
    '(message) => self.postMessage(message));\n';
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  try {
    const worker = new Worker(url, { type: 'module', name });
    return {
      post: (message) => worker.postMessage(message),
      terminate: () => worker.terminate(),
      onMessage: (handler) => worker.addEventListener('message', (event) => handler(event.data)),
      onExit: (handler) => worker.addEventListener('error', (event) => handler(new Error(event.message || 'the worker failed'))),
    };
  } finally {
    // The worker has fetched its script by the time it runs; a revoked URL is fine then.
    setTimeout(() => URL.revokeObjectURL(url), threadSettings.startTimeoutMs);
  }
}

/** A promise and its settle functions, with a timeout that rejects it. */
function deferred(what, ms = threadSettings.startTimeoutMs) {
  let resolve;
  let reject;
  const promise = new Promise((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  promise.then(() => clearTimeout(timer), () => clearTimeout(timer));
  return { promise, resolve, reject };
}

/** The workers of this agent and the control block they wait on. */
class Pool {
  control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  workers = []; // { handle, live, started: deferred, attached: Map id -> deferred }
  broken = null; // an Error once a worker died holding a claim: the control block is then unusable
  job = 0; // the number of the last job begun
  open = null; // a background job in flight, of any team: { finish() }
  #nextId = 1;

  /** Makes sure at least `count` workers have started; rejects when one cannot. */
  async grow(count) {
    const starting = [];
    for (let index = 0; index < count; index++) {
      // A worker that ended while idle is replaced in its place (its words reset).
      if (index < this.workers.length && this.workers[index].live) continue;
      Atomics.store(this.control, CONTROL.YIELD + index, 0);
      Atomics.store(this.control, CONTROL.CLAIM + index, 0);
      const started = deferred(`worker ${index} of ema-wasm's thread pool`);
      const record = { handle: null, live: true, started, attached: new Map(), exitError: null };
      const previous = this.workers[index];
      this.workers[index] = record;
      try {
        record.handle = (threadSettings.spawn ?? spawnWorker)(`ema-wasm thread ${index + 1}`);
      } catch (error) {
        record.live = false;
        started.reject(error); // clears its timer: nothing may keep the process waiting
        if (previous === undefined) this.workers.pop();
        else this.workers[index] = previous;
        throw error;
      }
      record.handle.onMessage((message) => this.#onMessage(record, message));
      record.handle.onExit((error) => this.#onExit(record, error));
      record.handle.post({ type: 'start', control: this.control.buffer, index });
      // One that does not start in time is ended, and replaced by the next grow().
      const retired = started.promise.catch((error) => this.#retire(record, error));
      retired.catch(() => {}); // observed even when a later spawn throws before Promise.all
      starting.push(retired);
    }
    await Promise.all([...starting, ...this.workers.slice(0, count).map((worker) => worker.started.promise)]);
  }

  /** Ends a worker that did not answer in time, so that it is replaced; rethrows `error`. */
  #retire(record, error) {
    if (record.live) {
      record.live = false;
      record.exitError = error;
      record.handle.terminate();
    }
    throw error;
  }

  #onMessage(record, message) {
    if (message.type === 'started') record.started.resolve();
    else if (message.type === 'attached') {
      const waiting = record.attached.get(message.id);
      if (message.error === undefined) waiting?.resolve();
      else waiting?.reject(new Error(message.error));
    }
  }

  #onExit(record, error) {
    if (!record.live) return;
    record.live = false;
    record.exitError = error;
    record.started.reject(error);
    for (const waiting of record.attached.values()) waiting.reject(error);
  }

  /**
   * Sends `message` to worker `index` and makes it leave its wait to read it:
   * YIELD counts the messages on their way (several may be in flight).
   */
  #send(index, message) {
    Atomics.add(this.control, CONTROL.YIELD + index, 1);
    this.workers[index].handle.post(message);
    Atomics.add(this.control, CONTROL.WAKE, 1);
    Atomics.notify(this.control, CONTROL.WAKE);
  }

  newId() {
    return this.#nextId++;
  }

  /**
   * Instantiates `module` over `memory` in workers 0..count-1, each on its
   * stack (stackTops[i]); rejects when one cannot (the EMA then runs on its
   * calling thread alone, or the caller throws).
   */
  async attach(id, count, module, memory, stackTops) {
    await this.grow(count);
    const records = this.workers.slice(0, count);
    const answers = records.map((record, index) => {
      if (!record.live) throw record.exitError ?? new Error(`worker ${index} is not running`);
      const answer = deferred(`worker ${index} of ema-wasm's thread pool, instantiating the threads build,`);
      record.attached.set(id, answer);
      this.#send(index, { type: 'attach', id, module, memory, stackTop: stackTops[index] });
      const settled = answer.promise.then(
        () => record.attached.delete(id),
        (error) => {
          record.attached.delete(id);
          // A worker that fails to instantiate may be short of memory: it stays, for other EMAs.
          if (/did not answer/.test(error.message)) this.#retire(record, error);
          throw error;
        },
      );
      settled.catch(() => {}); // observed even when a later worker throws before Promise.all
      return settled;
    });
    await Promise.all(answers);
    return records;
  }

  /** Lets the workers of `records` (or the first `records` workers) drop EMA `id`'s instance. */
  detach(id, records) {
    const list = typeof records === 'number' ? this.workers.slice(0, records) : records;
    for (const record of list) {
      const index = this.workers.indexOf(record);
      if (record.live && index >= 0) this.#send(index, { type: 'detach', id });
    }
  }


  /** A test's hook: worker `index` throws (and exits) once it holds its next claim after `claims` more. */
  dieAfterClaims(index, claims) {
    this.#send(index, { type: 'die-after-claims', claims });
  }

  /** A test's hook: ends worker `index` as a crash would. */
  terminate(index) {
    return this.workers[index].handle.terminate();
  }
}

let pool = null;

/** This agent's pool, made on first use, and made anew after one broke (its workers are ended). */
function thePool() {
  if (pool !== null && pool.broken !== null) {
    for (const worker of pool.workers) if (worker.live) worker.handle.terminate();
    pool = null;
  }
  pool ??= new Pool();
  return pool;
}

/** For tests: the pool (null before first use). */
export function currentPool() {
  return pool;
}

// An EMA dropped without dispose(): its workers drop its instance, and with
// it their hold on its shared memory.
const dropped = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry(({ pool, id, records }) => pool.detach(id, records)) : null;

/**
 * The workers one EMA's steps use: `workers` of the pool, attached to its
 * memory. Runs jobs (see the file's head); `applyOnCaller(task)` applies a
 * task on the calling thread and returns its status.
 */
export class Team {
  #pool;
  #id;
  #workers;
  #open = null; // this team's background job in flight: { finish() }
  broken = null; // an Error: a worker died holding one of this EMA's claims

  constructor(pool, id, records) {
    this.#pool = pool;
    this.#id = id;
    this.#workers = records; // the pool's records of the workers attached to this EMA
    dropped?.register(this, { pool, id, records }, this);
  }

  /** Attached workers still running (one that ended is not replaced for this EMA). */
  get #liveWorkers() {
    return this.#workers.filter((worker) => worker.live).length;
  }

  /**
   * Attaches `workers` workers to an EMA's `memory`; resolves to a Team, or
   * rejects with why not (a worker that would not start or instantiate).
   */
  static async create(module, memory, workers, stackTops) {
    const shared = thePool();
    const id = shared.newId();
    let records;
    try {
      records = await shared.attach(id, workers, module, memory, stackTops);
    } catch (error) {
      shared.detach(id, workers);
      throw error;
    }
    return new Team(shared, id, records);
  }

  /**
   * Whether this EMA's next step can use the workers: first finishes
   * another EMA's background step in flight (one job at a time per pool),
   * whose failure is that EMA's to report (it refuses further use), not
   * this one's; false once the pool broke, or no attached worker runs.
   * Called before a step opens, so that a false answer leaves the calling
   * thread to do the whole step.
   */
  ready() {
    const open = this.#pool.open;
    if (open !== null && open !== this.#open) {
      try {
        open.finish();
      } catch {
        // That EMA's own calls throw it (its team is broken).
      }
    }
    return this.#pool.broken === null && this.#liveWorkers > 0;
  }

  /** Whether the workers can take steps, without finishing anything (see ready()). */
  get usable() {
    return this.#pool.broken === null && this.#liveWorkers > 0;
  }

  /** Threads a step uses now: the calling thread and the live attached workers. */
  get threads() {
    return 1 + this.#liveWorkers;
  }

  /** Whether a job of this team is in flight (a background step). */
  get busy() {
    return this.#open !== null;
  }

  /**
   * Opens a job over `total` tasks for the EMA at `context`: `fields` are
   * the mode's words (CONTROL names). Waits first for any other team's
   * background job to finish (one job at a time per pool).
   */
  #begin(mode, total, published, fields) {
    const pool = this.#pool;
    if (pool.broken !== null) throw pool.broken;
    pool.open?.finish();
    const control = pool.control;
    const job = pool.job + 1;
    pool.job = job;
    Atomics.store(control, CONTROL.EMA, this.#id);
    Atomics.store(control, CONTROL.MODE, mode);
    Atomics.store(control, CONTROL.TOTAL, total);
    Atomics.store(control, CONTROL.PUBLISHED, published);
    Atomics.store(control, CONTROL.NEXT, 0);
    Atomics.store(control, CONTROL.DONE, 0);
    Atomics.store(control, CONTROL.FAILED, 0);
    for (const [name, value] of Object.entries(fields)) Atomics.store(control, CONTROL[name], value);
    Atomics.store(control, CONTROL.JOB, job);
    Atomics.add(control, CONTROL.WAKE, 1);
    Atomics.notify(control, CONTROL.WAKE);
    return job;
  }

  /** Claims a published task for the calling thread; -1 when none is ready. */
  #claim() {
    const control = this.#pool.control;
    for (;;) {
      const next = Atomics.load(control, CONTROL.NEXT);
      if (next >= Atomics.load(control, CONTROL.PUBLISHED)) return -1;
      if (Atomics.compareExchange(control, CONTROL.NEXT, next, next + 1) === next) return next;
    }
  }

  /** Runs one task on the calling thread if one is ready; false when none was. */
  #help(applyOnCaller, mode) {
    const task = this.#claim();
    if (task < 0) return false;
    const control = this.#pool.control;
    const status = applyOnCaller(task);
    if (status !== 0) Atomics.compareExchange(control, CONTROL.FAILED, 0, status);
    if (mode === MODE_WINDOWS) Atomics.store(control, CONTROL.BUSY + (task % Atomics.load(control, CONTROL.RING)), 0);
    Atomics.add(control, CONTROL.DONE, 1);
    return true;
  }

  /**
   * Runs a job to its end: the calling thread takes the tasks left, waits
   * for the workers' claims, closes the job. Throws (and breaks the pool and
   * this team) when a claim stands still for threadSettings.stallMs: its
   * worker died in the middle of a task. Returns the first failing status, or 0.
   */
  #finish(job, applyOnCaller, mode) {
    const pool = this.#pool;
    const control = pool.control;
    while (this.#help(applyOnCaller, mode));
    const total = Atomics.load(control, CONTROL.TOTAL);
    const progress = this.#progress();
    while (Atomics.load(control, CONTROL.DONE) < total) {
      pause(control, CONTROL.DONE, Atomics.load(control, CONTROL.DONE), 5);
      progress.check();
    }
    Atomics.store(control, CONTROL.CLOSED, job);
    // Every task is done; a worker still inside the job is leaving it. One
    // that died there (between tasks) never leaves: the pool breaks, this
    // step stands.
    const leaving = performance.now();
    while (Atomics.load(control, CONTROL.ACTIVE) !== 0) {
      pause(control, CONTROL.ACTIVE, Atomics.load(control, CONTROL.ACTIVE), 1);
      if (performance.now() - leaving > threadSettings.stallMs) {
        pool.broken = new Error(`ema-wasm: a worker of the thread pool stopped between two tasks (not within ${threadSettings.stallMs / 1000} s)`);
        break;
      }
    }
    return Atomics.load(control, CONTROL.FAILED);
  }

  /**
   * A watch on the job's finished tasks: check() throws (and breaks the pool
   * and this team) when none has finished for threadSettings.stallMs while
   * the calling thread waits: a worker died holding a claim.
   */
  #progress() {
    const control = this.#pool.control;
    let done = Atomics.load(control, CONTROL.DONE);
    let since = performance.now();
    return {
      check: () => {
        const now = Atomics.load(control, CONTROL.DONE);
        if (now !== done) {
          done = now;
          since = performance.now();
          return;
        }
        if (performance.now() - since <= threadSettings.stallMs) return;
        const total = Atomics.load(control, CONTROL.TOTAL);
        const error = new Error(
          `ema-wasm: a worker of the thread pool stopped in the middle of a step (${total - done} of ${total} tasks ` +
            `did not finish within ${threadSettings.stallMs / 1000} s); this EMA's shadows may be partly updated, so it refuses ` +
            'further use: load its last checkpoint into a new EMA',
        );
        this.broken = error;
        this.#pool.broken = error;
        this.#open = null;
        this.#pool.open = null;
        throw error;
      },
    };
  }

  /**
   * One step over `floats` floats of the parameter region in ranges:
   * `applyRange(begin, end)` applies one on the calling thread. In the
   * foreground the calling thread works too and the call returns when the
   * step is done, with the first failing status or 0; in the background it
   * returns at once and `settle()` finishes it (`onSettled(status)` runs then).
   */
  runRanges(context, floats, applyRange, { background = false, onSettled } = {}) {
    const threads = background ? Math.max(1, this.#liveWorkers) : this.threads;
    // Several tasks per thread, so that a slow thread is made up for; each
    // a whole number of 1,024 floats (4 KiB: no two threads share a line).
    const chunk = Math.max(16384, Math.ceil(floats / (threads * 4) / 1024) * 1024);
    const total = Math.ceil(floats / chunk);
    const applyOnCaller = (task) => applyRange(task * chunk, Math.min(task * chunk + chunk, floats));
    const job = this.#begin(MODE_RANGES, total, total, { CHUNK: chunk, FLOATS: floats, CONTEXT: context });
    if (!background) return this.#finish(job, applyOnCaller, MODE_RANGES);
    const open = {
      finish: () => {
        this.#open = null;
        this.#pool.open = null;
        onSettled(this.#finish(job, applyOnCaller, MODE_RANGES));
      },
    };
    this.#open = open;
    this.#pool.open = open;
    return 0;
  }

  /**
   * One copy-in step over `windowCount` windows of a plan (at byte address
   * `plan`: per window its segment table's address and segment count):
   * `stage(window, buffer)` copies the caller's values of a window into ring
   * buffer `buffer` (of `ring`, each `stagingFloats` floats from byte address
   * `staging`), and `applyWindow(window)` applies one on the calling thread.
   * Returns the first failing status, or 0.
   */
  runWindows(context, { plan, windowCount, staging, stagingFloats, ring }, stage, applyWindow) {
    const control = this.#pool.control;
    for (let buffer = 0; buffer < ring; buffer++) Atomics.store(control, CONTROL.BUSY + buffer, 0);
    const job = this.#begin(MODE_WINDOWS, windowCount, 0, {
      PLAN: plan, RING: ring, STAGING: staging, STAGING_FLOATS: stagingFloats, CONTEXT: context,
    });
    const progress = this.#progress();
    for (let window = 0; window < windowCount; window++) {
      const busy = CONTROL.BUSY + (window % ring);
      while (Atomics.load(control, busy) !== 0) {
        // The calling thread only copies while the workers keep up: its copy
        // into shared memory is the slow half here (bench/threads.mjs: 16M
        // at 2 threads took 16.5-17.7 ms so, 19-27 ms when it also applied
        // windows). It applies one itself only when none finished for a
        // millisecond (workers gone or starved).
        const done = Atomics.load(control, CONTROL.DONE);
        pause(control, busy, 1, 1);
        if (Atomics.load(control, busy) !== 0 && Atomics.load(control, CONTROL.DONE) === done && !this.#help(applyWindow, MODE_WINDOWS)) {
          progress.check();
        }
      }
      stage(window, window % ring);
      Atomics.store(control, busy, 1);
      Atomics.store(control, CONTROL.PUBLISHED, window + 1);
      Atomics.notify(control, CONTROL.PUBLISHED);
    }
    return this.#finish(job, applyWindow, MODE_WINDOWS);
  }

  /** Finishes a background job, if one is in flight. */
  settle() {
    if (this.broken !== null) throw this.broken;
    this.#open?.finish();
  }

  /** Settles (unless a worker died in a step: that was thrown already), then lets the workers drop their instances. */
  dispose() {
    dropped?.unregister(this);
    try {
      if (this.broken === null) this.settle();
    } finally {
      this.#pool.detach(this.#id, this.#workers);
    }
  }
}

/** Test hooks on the pool's workers. */
export const threadTestHooks = {
  /** Ends every worker and forgets the pool: the next EMA that needs one makes a new pool. */
  async resetPool() {
    const old = pool;
    pool = null;
    if (old !== null) await Promise.all(old.workers.map((worker) => worker.handle?.terminate()));
  },
  spawnWorker,
  dieAfterClaims: (index, claims) => pool.dieAfterClaims(index, claims),
  terminate: (index) => pool.terminate(index),
  liveWorkers: () => pool?.workers.filter((worker) => worker.live).length ?? 0,
};
