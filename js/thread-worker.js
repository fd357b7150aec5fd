// The workers' half of the threads build: what runs inside each worker of a
// pool (threads.js). It is written as one self-contained function, which the
// build turns into a string (js/wasm/thread-worker-source.js, so that no
// bundler transform can touch it) and threads.js into the worker's source
// (a Blob URL in browsers, an eval'd script in Node): no bundler, dev server
// or CDN has a worker file to find, the same reason the .wasm builds travel
// as JavaScript (loader.js). Nothing imports this file at run time.
//
// A worker keeps one instance of the threads build per EMA attached to it,
// each over that EMA's shared memory and on a stack of its own that the
// calling thread allocated (the linker's stack belongs to the calling
// thread's instance). It only ever calls the two exports that apply part of
// an open step, whose concurrent calls over disjoint parts are safe
// (include/ema_stream.h, include/ema.h); everything else, allocation
// included, stays on the calling thread.
//
// The control words are threads.js's CONTROL layout, repeated here because
// this function cannot import: test/js/threads.test.js checks the two agree.

/**
 * The worker's main: `listen(handler)` delivers the pool's messages, `post`
 * answers. Between messages the worker waits on the control block for jobs;
 * a yield request sends it back to its event loop to read a message.
 */
export function threadWorkerMain(listen, post) {
  const CONTROL = {
    WAKE: 0, JOB: 1, CLOSED: 2, EMA: 3, MODE: 4, NEXT: 5, PUBLISHED: 6, TOTAL: 7, DONE: 8, FAILED: 9, ACTIVE: 10,
    CHUNK: 11, FLOATS: 12, PLAN: 13, RING: 14, STAGING: 15, STAGING_FLOATS: 16, CONTEXT: 17,
    BUSY: 32, YIELD: 96, CLAIM: 160,
  };
  const MODE_WINDOWS = 1;
  const PLAN_WORDS = 2; // per window of a plan: its segment table's byte address and its segment count
  let control = null;
  let index = -1;
  let lastJob = 0;
  let dieAfterClaims = -1; // a test's request: exit while holding the next claim
  const instances = new Map(); // EMA id -> the instance's exports

  listen((message) => {
    // YIELD counts the messages sent after 'start' that this worker has yet
    // to read: it goes back to its event loop while one is on its way.
    if (message.type !== 'start') Atomics.sub(control, CONTROL.YIELD + index, 1);
    if (message.type === 'start') {
      control = new Int32Array(message.control);
      index = message.index;
      lastJob = Atomics.load(control, CONTROL.JOB);
      post({ type: 'started', index });
    } else if (message.type === 'attach') {
      try {
        const { exports } = new WebAssembly.Instance(message.module, {
          env: { memory: message.memory, emscripten_notify_memory_growth() {} },
        });
        exports.stackRestore(message.stackTop);
        instances.set(message.id, { exports, memory: message.memory });
        post({ type: 'attached', id: message.id });
      } catch (error) {
        post({ type: 'attached', id: message.id, error: String((error && error.message) || error) });
      }
    } else if (message.type === 'detach') {
      instances.delete(message.id);
    } else if (message.type === 'die-after-claims') {
      dieAfterClaims = message.claims;
    }
    if (control !== null) serve();
  });

  /** Waits for jobs until a message is on its way. */
  function serve() {
    for (;;) {
      // WAKE first: the pool asks (YIELD, JOB), then bumps WAKE, so a request
      // made after these reads changes WAKE and the wait below returns at once.
      const wake = Atomics.load(control, CONTROL.WAKE);
      if (Atomics.load(control, CONTROL.YIELD + index) > 0) return;
      const job = Atomics.load(control, CONTROL.JOB);
      if (job !== lastJob) {
        lastJob = job;
        work(job);
        continue;
      }
      Atomics.wait(control, CONTROL.WAKE, wake);
    }
  }

  /** Takes part in job `job` until its tasks are all claimed. */
  function work(job) {
    Atomics.add(control, CONTROL.ACTIVE, 1);
    try {
      // Entered after the job closed (or a later one began): its fields are
      // no longer this job's. threads.js closes a job, then waits for ACTIVE 0.
      if (Atomics.load(control, CONTROL.CLOSED) === job || Atomics.load(control, CONTROL.JOB) !== job) return;
      const instance = instances.get(Atomics.load(control, CONTROL.EMA));
      if (instance === undefined) return; // not attached to this EMA: the others do its tasks
      for (;;) {
        const task = claim(job);
        if (task < 0) return;
        Atomics.store(control, CONTROL.CLAIM + index, task + 1);
        if (dieAfterClaims === 0) throw new Error('ema-wasm: test: a worker dies holding a claim');
        if (dieAfterClaims > 0) dieAfterClaims -= 1;
        const status = apply(instance, task);
        if (status !== 0) Atomics.compareExchange(control, CONTROL.FAILED, 0, status);
        Atomics.store(control, CONTROL.CLAIM + index, 0);
        finished(task);
      }
    } finally {
      Atomics.sub(control, CONTROL.ACTIVE, 1);
    }
  }

  /** The next task of `job`, or -1 when none is left. */
  function claim(job) {
    for (;;) {
      const next = Atomics.load(control, CONTROL.NEXT);
      if (next >= Atomics.load(control, CONTROL.TOTAL) || Atomics.load(control, CONTROL.JOB) !== job) return -1;
      const published = Atomics.load(control, CONTROL.PUBLISHED);
      if (next >= published) {
        Atomics.wait(control, CONTROL.PUBLISHED, published, 1);
        continue;
      }
      if (Atomics.compareExchange(control, CONTROL.NEXT, next, next + 1) === next) return next;
    }
  }

  /** Applies task `task` of the job: a staged window, or a range of the parameter region. Returns the status. */
  function apply({ exports, memory }, task) {
    // Addresses travel as int32 words: >>> 0 reads those past 2 GiB as the unsigned numbers they are.
    const context = Atomics.load(control, CONTROL.CONTEXT) >>> 0;
    if (Atomics.load(control, CONTROL.MODE) === MODE_WINDOWS) {
      const stagingFloats = Atomics.load(control, CONTROL.STAGING_FLOATS);
      const staging = (Atomics.load(control, CONTROL.STAGING) >>> 0) + (task % Atomics.load(control, CONTROL.RING)) * stagingFloats * 4;
      // The window's entry in the plan: its segment table's address and length.
      const plan = (Atomics.load(control, CONTROL.PLAN) >>> 0) + task * PLAN_WORDS * 4;
      const [segments, count] = new Uint32Array(memory.buffer, plan, 2);
      return exports.ema_step_apply_window(context, segments, count, staging, stagingFloats);
    }
    const chunk = Atomics.load(control, CONTROL.CHUNK);
    const floats = Atomics.load(control, CONTROL.FLOATS);
    const begin = task * chunk;
    return exports.ema_resident_apply_range(context, begin, Math.min(begin + chunk, floats));
  }

  function finished(task) {
    if (Atomics.load(control, CONTROL.MODE) === MODE_WINDOWS) {
      const busy = CONTROL.BUSY + (task % Atomics.load(control, CONTROL.RING));
      Atomics.store(control, busy, 0);
      Atomics.notify(control, busy);
    }
    Atomics.add(control, CONTROL.DONE, 1);
    Atomics.notify(control, CONTROL.DONE);
  }
}
