// The Wasm boundary, in one place: every instance and its memory, every call
// into the module's exports, every pointer and every view of linear memory
// lives in this file (and, for the threads build's workers, in
// thread-worker.js, which calls the two exports that apply part of a step).
// The rest of js/ speaks in names, arrays and options.
//
// Views die when memory grows (its ArrayBuffer is replaced), so none leaves
// this file except where a method says so: shadows and backups are copied
// out, caller arrays are copied in, and the resident parameter views of
// EmaArena.paramView live as long as a resident arena, whose memory never
// grows after creation.

import { MAX_PAGES, PAGE_BYTES, pagesFor, tooLargeMessage } from './memory-budget.js';
import { MAX_RING, Team } from './threads.js';
import { copyOf, windowOf, writeInto } from './typed-arrays.js';

/** The status codes JS reacts to (include/ema_status.h; numbers are pinned). */
const STATUS = Object.freeze({
  OK: 0,
  OUT_OF_MEMORY: 3,
  NOTHING_STORED: 7,
  TOO_MANY_SLOTS: 8,
  TOO_LARGE: 9,
  COUNTER_OVERFLOW: 12,
  NONFINITE: 36,
  INVALID_ARGUMENT: 37,
});

// struct ema_schedule and struct ema_step_info (include/ema.h): byte offsets
// and types, pinned by _Static_assert in src/schedule.c.
const SCHEDULE_LAYOUT = Object.freeze({
  recipe: [0, 'u32'], rounding: [4, 'u32'], warmup: [8, 'u32'], debias: [12, 'u32'], nonfinite: [16, 'u32'],
  decay: [24, 'f64'], min_decay: [32, 'f64'], inv_gamma: [40, 'f64'], power: [48, 'f64'],
  update_after_step: [56, 'i64'], update_every: [64, 'i64'], overwrite_every: [72, 'i64'],
  batch_size: [80, 'i64'], sigma_rel: [88, 'f64'],
});
const SCHEDULE_BYTES = 96;
const STEP_INFO_BYTES = 32;
const MAX_PROFILES = 16; // EMA_MAX_PROFILES
/** ema_step_begin_at's `step` when there is none (EMA_NO_STEP). */
const NO_STEP = -(2n ** 63n);
/** What a step did, by ema_action number. */
const ACTION_NAMES = ['averaged', 'copied', 'skipped', 'skipped'];
const ACTION_SKIP = 2;
const ACTION_SKIP_NONFINITE = 3;
/** ema_slot_mode numbers, by treatment (recipes.js). */
const SLOT_MODE = Object.freeze({ average: 0, copy: 1, hold: 2, keep: 3 });

// Statuses that mean a size or count is past a limit: RangeError, like JS's own.
const RANGE_STATUSES = new Set([STATUS.OUT_OF_MEMORY, STATUS.TOO_MANY_SLOTS, STATUS.TOO_LARGE, STATUS.COUNTER_OVERFLOW]);

// What ema_abi_value() is asked (enum ema_abi in include/ema_stream.h; numbers pinned).
const ABI = Object.freeze({ STAGING_FLOATS: 1, SEGMENT_CAPACITY: 2, SEGMENT_WORDS: 3 });
const MIN_PAGES = 16; // -sINITIAL_MEMORY=1MB: the module's own data and stack
/** Each worker's stack in the threads build (the module's own is -sTOTAL_STACK=64KB). */
const WORKER_STACK_BYTES = 65536;

// ---- instances ------------------------------------------------------------

// Modules that import a shared memory (the threads build): markSharedMemory().
const sharedMemoryModules = new WeakSet();

/** Records that `module` imports a shared memory (the threads build), which instantiate() then makes. */
export function markSharedMemory(module) {
  sharedMemoryModules.add(module);
}

/**
 * A memory of `pages` pages if the engine grants it, else smaller: the arena
 * can still grow later, so asking big is an optimisation, not a requirement.
 * Its maximum stops one page short of 4 GiB (see memory-budget.js).
 */
function createMemory(pages, shared) {
  for (let initial = Math.min(Math.max(pages, MIN_PAGES), MAX_PAGES); ; initial = Math.max(MIN_PAGES, initial >> 1)) {
    try {
      return new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared });
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      if (initial === MIN_PAGES) {
        throw new RangeError(
          `ema-wasm: this JavaScript engine refused to create a WebAssembly memory of ${MIN_PAGES * PAGE_BYTES} bytes ` +
            `(${error.message}); the process may be out of memory or address space`,
        );
      }
    }
  }
}

/**
 * A fresh instance of a compiled build, initialised and ready for calls, with
 * a memory of at least `expectedBytes` (the module imports its memory).
 *
 * Sizing memory up front matters beyond saving a few copies: growing it
 * detaches the old ArrayBuffer, and the first detach in a V8 isolate turns
 * every typed-array loop in it into a slower form for good (~1.6x), including
 * the user's own training loop. Untouched pages cost no physical memory.
 * The threads build imports a `shared` memory, which never detaches.
 */
export function instantiate(module, expectedBytes = 0) {
  const memory = createMemory(pagesFor(expectedBytes), sharedMemoryModules.has(module));
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      // Views are re-made lazily when the buffer changes (Instance.heapF32),
      // so there is nothing to do when memory grows.
      emscripten_notify_memory_growth() {},
    },
  });
  instance.exports._initialize();
  return new Instance(instance.exports, memory, module);
}

/**
 * Which build a module is ('simd' or 'scalar'), asked of the module itself
 * (ema_simd128) on a throwaway instance. Throws when the module cannot be
 * instantiated or answers nonsense.
 */
export function buildOf(module) {
  const answer = instantiate(module).exports.ema_simd128();
  if (answer !== 0 && answer !== 1) throw new TypeError(`ema_simd128() answered ${answer}, not 0 or 1`);
  return answer === 1 ? 'simd' : 'scalar';
}

/** One instance of the C core and the typed-array views over its memory. */
class Instance {
  constructor(exports, memory, module) {
    this.exports = exports;
    this.memory = memory;
    this.module = module;
    this.f32View = new Float32Array(memory.buffer);
    this.u32View = new Uint32Array(memory.buffer);
  }

  /** Float32 view of all of memory, valid until the next call that allocates. */
  get heapF32() {
    if (this.f32View.buffer !== this.memory.buffer) this.f32View = new Float32Array(this.memory.buffer);
    return this.f32View;
  }

  get heapU32() {
    if (this.u32View.buffer !== this.memory.buffer) this.u32View = new Uint32Array(this.memory.buffer);
    return this.u32View;
  }

  /** Allocates `byteLength` bytes in linear memory (may grow it). */
  malloc(byteLength, method) {
    // >>> 0: Wasm returns pointers as i32, negative above 2 GiB.
    const pointer = this.exports.malloc(Math.max(byteLength, 4)) >>> 0;
    if (pointer === 0) {
      throw new RangeError(tooLargeMessage(method, 'working space', byteLength, this.memory.buffer.byteLength));
    }
    return pointer;
  }

  free(pointer) {
    this.exports.free(pointer);
  }

  /** Copies a list of uint32 into freshly allocated memory; free it after. */
  mallocU32(values, method) {
    const pointer = this.malloc(values.length * 4, method);
    this.heapU32.set(values, pointer >>> 2);
    return pointer;
  }

  /** A NUL-terminated or `length`-byte UTF-8 string at `pointer`, decoded (a copy). */
  string(pointer, length, decoder = new TextDecoder()) {
    if (length === undefined) length = new Uint8Array(this.memory.buffer, pointer).indexOf(0);
    return decoder.decode(new Uint8Array(this.memory.buffer, pointer, length));
  }

  /** Throws when a C call did not return EMA_OK. */
  check(status, what) {
    if (status === STATUS.OK) return;
    const message = `ema-wasm: ${what} failed: ${this.string(this.exports.ema_status_string(status))} (status ${status})`;
    throw RANGE_STATUSES.has(status) ? new RangeError(message) : new Error(message);
  }
}

// ---- an EMA's arena ---------------------------------------------------------

/**
 * One EMA context in its own instance: the shadows (and, resident, the
 * parameters), the LitEma state, the backup, and the streaming update. Slots
 * are numbered in creation order; `params` arguments are the caller's
 * entries ({ data }, typed arrays already checked and pinned by resolve.js)
 * in slot order.
 */
export class EmaArena {
  #core; // the Instance; reach it through #instance, which first finishes a background step
  #context;
  #team = null; // the threads build's workers (threads.js), once attached
  #threads = null; // the threads build: { workers, background, required, stackTops, plan, mirrorOffsets }
  #teamError = null; // why the workers could not be attached
  #scratch; // 8 bytes for out-parameters
  #window; // the staging window and segment table: pointers (fixed for the context's life) and sizes
  #lengths;
  #profileCount;
  #shadowOffsets; // [profile][slot]: float index of each shadow in linear memory
  #paramOffsets = null; // resident: float index of each parameter
  #shadowViews = []; // [profile]: see #shadowViewsOf
  #shadowViewsBuffer = null;
  #allWindows = null; // #windowsOf(null), kept: fixed by the lengths

  /**
   * Creates the context in a new instance sized for `expectedBytes`, with
   * the schedule `schedule` (fields of struct ema_schedule; the rest keep
   * the recipe's defaults), or with `profiles` (a list of fields per
   * profile over `schedule`'s: the widths of several power profiles), and
   * each slot's mode (SLOT_MODE's names), and copies `initial[slot]` into
   * each resident parameter and, unless `zeroShadows` (Keras's averages, a
   * debiased EMA), each profile's shadow. An allocation failure is a
   * RangeError naming `what` and `needed`.
   */
  constructor(module, { schedule, profiles = null, lengths, modes, resident, initial, zeroShadows, expectedBytes, method, what, needed, threads = null }) {
    const instance = instantiate(module, expectedBytes);
    const exports = instance.exports;
    const outOfMemory = (status) => {
      if (status === STATUS.OUT_OF_MEMORY) throw new RangeError(tooLargeMessage(method, what, needed));
      instance.check(status, `${method}: allocating the arena`);
    };
    this.#core = instance;
    this.#lengths = lengths.slice();
    // Out-parameters: the context pointer (8 bytes, keeping what follows
    // 8-byte aligned), then ema_schedules (one per profile) or a step's ema_step_info.
    this.#scratch = instance.malloc(8 + Math.max(MAX_PROFILES * SCHEDULE_BYTES, STEP_INFO_BYTES), method);
    const lengthsPointer = instance.mallocU32(lengths, method);
    const widths = profiles ?? [{}];
    try {
      widths.forEach((fields, profile) => this.#writeSchedule({ ...schedule, ...fields }, method, profile));
      outOfMemory(exports.ema_create_profiles(this.#scratch, widths.length, this.#scratch + 8, lengths.length, lengthsPointer));
    } finally {
      instance.free(lengthsPointer);
    }
    this.#context = instance.heapU32[this.#scratch >>> 2];
    this.#profileCount = widths.length;
    modes.forEach((mode, slot) => {
      if (mode !== 'average') instance.check(exports.ema_set_slot_mode(this.#context, slot, SLOT_MODE[mode]), method);
    });
    // Wasm returns pointers as i32: above 2 GiB they read negative here.
    this.#window = {
      staging: exports.ema_staging(this.#context) >>> 0,
      segments: exports.ema_segment_table(this.#context) >>> 0,
      floats: exports.ema_abi_value(ABI.STAGING_FLOATS),
      capacity: exports.ema_abi_value(ABI.SEGMENT_CAPACITY),
      words: exports.ema_abi_value(ABI.SEGMENT_WORDS),
    };
    this.#shadowOffsets = widths.map((_, profile) => lengths.map((_, slot) => exports.ema_profile_shadow(this.#context, profile, slot) >>> 2));
    if (resident) {
      outOfMemory(exports.ema_resident_enable(this.#context));
      this.#paramOffsets = lengths.map((_, slot) => exports.ema_param(this.#context, slot) >>> 2);
    }
    if (threads !== null) this.#prepareThreads(threads, resident, method, outOfMemory);
    const heap = instance.heapF32;
    initial.forEach((data, slot) => {
      if (!zeroShadows) for (const offsets of this.#shadowOffsets) heap.set(data, offsets[slot]);
      if (resident) heap.set(data, this.#paramOffsets[slot]);
    });
  }

  /** The instance, once any background step has finished (every use of memory or the context goes through here). */
  get #instance() {
    this.#team?.settle();
    return this.#core;
  }

  // ---- the threads build ------------------------------------------------------

  /**
   * Allocates what the workers need: a stack each, and either the mirror of
   * the parameters (a background step) or the ring of staging windows and
   * the plan of the copy-in step's windows.
   */
  #prepareThreads({ workers, background, required }, resident, method, outOfMemory) {
    const instance = this.#core;
    const exports = instance.exports;
    const stackTops = Array.from({ length: workers }, () => instance.malloc(WORKER_STACK_BYTES, method) + WORKER_STACK_BYTES);
    const threads = { workers, background, required, stackTops, plan: null, mirrorOffsets: null };
    if (background) {
      outOfMemory(exports.ema_mirror_enable(this.#context));
      threads.mirrorOffsets = this.#lengths.map((_, slot) => exports.ema_param(this.#context, slot) >>> 2);
    } else if (!resident) {
      threads.plan = this.#windowPlan(workers, method);
    }
    this.#threads = threads;
  }

  /**
   * The copy-in step's windows (#windowsOf), written once into memory as
   * per window its segment table's address and count (thread-worker.js
   * reads them), with a ring of staging windows that the calling thread
   * fills while workers apply earlier ones.
   */
  #windowPlan(workers, method) {
    const { floats: STAGING_FLOATS, words: SEGMENT_WORDS } = this.#window;
    const windows = this.#windowsOf(null);
    const instance = this.#core;
    const segmentWords = windows.reduce((sum, window) => sum + window.length, 0);
    const table = instance.malloc(windows.length * 8 + segmentWords * 4, method);
    let segmentsAt = table + windows.length * 8;
    const words = instance.heapU32;
    windows.forEach((segments, window) => {
      words[(table >>> 2) + 2 * window] = segmentsAt;
      words[(table >>> 2) + 2 * window + 1] = segments.length / SEGMENT_WORDS;
      words.set(segments, segmentsAt >>> 2);
      segmentsAt += segments.length * 4;
    });
    const ring = Math.min(MAX_RING, Math.max(4, 4 * (workers + 1)), windows.length || 1);
    const staging = instance.malloc(ring * STAGING_FLOATS * 4 + 64, method);
    return {
      table,
      windows,
      ring,
      staging: ((staging + 63) & ~63) >>> 0, // a whole cache line per window start (>>> 0: unsigned past 2 GiB)
    };
  }

  /**
   * Attaches the workers; resolves once they can take tasks. Until then,
   * and for good when they cannot (unless the threads were asked for by
   * number: that rejects), steps run on the calling thread with the same
   * results.
   */
  async attachThreads() {
    const threads = this.#threads;
    if (threads === null || this.#team !== null || this.#teamError !== null) return;
    try {
      this.#team = await Team.create(this.#core.module, this.#core.memory, threads.workers, threads.stackTops);
    } catch (error) {
      this.#teamError = error;
      if (threads.required) throw error;
    }
  }

  /**
   * The workers, when they can take this EMA's next step (see Team.ready);
   * else null: the calling thread does it all. Asked before a step opens.
   */
  get #workers() {
    const team = this.#team;
    if (team === null) return null;
    if (team.broken !== null) throw team.broken;
    return team.ready() ? team : null;
  }

  /** Threads a step uses: 1, or the calling thread and the live workers. */
  get threads() {
    if (this.#team?.broken) throw this.#team.broken;
    return this.#team?.usable ? this.#team.threads : 1;
  }

  /** Whether update() returns before the averaging ends (a background step). */
  get background() {
    if (this.#team?.broken) throw this.#team.broken;
    return this.#team?.usable === true && this.#threads.background;
  }

  /**
   * Writes a schedule into the scratch space (the `index`th of a list): the
   * recipe's defaults (ema_schedule_defaults, C's one copy of them), then the
   * given fields. Returns its pointer, valid until the next call that uses
   * the scratch.
   */
  #writeSchedule(fields, method, index = 0) {
    const instance = this.#instance;
    const pointer = this.#scratch + 8 + index * SCHEDULE_BYTES;
    instance.check(instance.exports.ema_schedule_defaults(pointer, fields.recipe), method);
    const view = new DataView(instance.memory.buffer, pointer, SCHEDULE_BYTES);
    for (const [field, value] of Object.entries(fields)) {
      const [offset, type] = SCHEDULE_LAYOUT[field];
      if (type === 'u32') view.setUint32(offset, value, true);
      else if (type === 'f64') view.setFloat64(offset, value, true);
      else view.setBigInt64(offset, BigInt(value), true);
    }
    return pointer;
  }

  /** How many profiles the context keeps (1 but for several power profiles). */
  get profileCount() {
    return this.#profileCount;
  }

  /** The schedule's fields as the context holds them (profile 0's). */
  get schedule() {
    return this.profileSchedule(0);
  }

  /** A profile's schedule fields. */
  profileSchedule(profile) {
    const instance = this.#instance;
    const pointer = this.#scratch + 8;
    instance.check(instance.exports.ema_get_profile_schedule(this.#context, profile, pointer), 'schedule');
    const view = new DataView(instance.memory.buffer, pointer, SCHEDULE_BYTES);
    const fields = {};
    for (const [field, [offset, type]] of Object.entries(SCHEDULE_LAYOUT)) {
      fields[field] = type === 'u32' ? view.getUint32(offset, true) : type === 'f64' ? view.getFloat64(offset, true) : Number(view.getBigInt64(offset, true));
    }
    return fields;
  }

  /**
   * Replaces schedule fields (a loaded state's options); the recipe stays.
   * Every profile takes the shared fields, profile 0 its width too.
   */
  setSchedule(fields, method) {
    const current = this.schedule;
    const pointer = this.#writeSchedule({ ...current, ...fields }, method);
    this.#instance.check(this.#instance.exports.ema_set_schedule(this.#context, pointer), method);
  }

  /** Replaces one profile's width (`sigma_rel`, `power`). */
  setProfileWidth(profile, fields, method) {
    const pointer = this.#writeSchedule({ ...this.profileSchedule(profile), ...fields }, method);
    this.#instance.check(this.#instance.exports.ema_set_profile_schedule(this.#context, profile, pointer), method);
  }

  /** Each profile's decay and weight in the last step: [{ decay, weight }]. */
  profileSteps() {
    const instance = this.#instance;
    const pointer = this.#scratch + 8;
    return Array.from({ length: this.#profileCount }, (_, profile) => {
      instance.check(instance.exports.ema_profile_step(this.#context, profile, pointer), 'update');
      const view = new DataView(instance.memory.buffer, pointer, STEP_INFO_BYTES);
      return { decay: view.getFloat64(0, true), weight: view.getFloat32(16, true) };
    });
  }

  /** The recipe's counter (LitEma's num_updates, diffusers' optimization_step, ...). */
  get counter() {
    return Number(this.#instance.exports.ema_counter(this.#context));
  }

  setCounter(counter, method) {
    this.#instance.check(this.#instance.exports.ema_set_counter(this.#context, BigInt(counter)), method);
  }

  /** Steps that averaged or copied (ema_steps): the training step count. */
  get steps() {
    return Number(this.#instance.exports.ema_steps(this.#context));
  }

  setSteps(steps, method) {
    this.#instance.check(this.#instance.exports.ema_set_steps(this.#context, BigInt(steps)), method);
  }

  /** ema-pytorch's `initted`. */
  get initted() {
    return this.#instance.exports.ema_initted(this.#context) !== 0;
  }

  setInitted(initted, method) {
    this.#instance.check(this.#instance.exports.ema_set_initted(this.#context, initted ? 1 : 0), method);
  }

  /** Sets a slot's mode (SLOT_MODE's names). */
  setSlotMode(slot, mode, method) {
    this.#instance.check(this.#instance.exports.ema_set_slot_mode(this.#context, slot, SLOT_MODE[mode]), method);
  }

  /** Whether the next step (with timm's `step`, or undefined) would skip: it then reads no parameter. */
  nextStepSkips(step) {
    const at = step === undefined ? NO_STEP : BigInt(step);
    return this.#instance.exports.ema_next_action(this.#context, at) === ACTION_SKIP;
  }

  /** What shadows are divided by when read (a debiased EMA), 1 otherwise, 0 before a debiased EMA's first update. */
  get readDivisor() {
    return this.#instance.exports.ema_read_divisor(this.#context);
  }

  /** What the step just planned did, from the scratch's ema_step_info. */
  #profile0StepResult() {
    const view = new DataView(this.#instance.memory.buffer, this.#scratch + 8, STEP_INFO_BYTES);
    const action = view.getUint32(24, true);
    return {
      action: ACTION_NAMES[action],
      decay: view.getFloat64(0, true),
      weight: view.getFloat32(16, true),
      counter: Number(view.getBigInt64(8, true)),
      overwrote: view.getUint32(28, true) !== 0,
      nonFinite: action === ACTION_SKIP_NONFINITE,
    };
  }

  /** The compiled module (the safetensors parser of this EMA uses it too). */
  get module() {
    return this.#instance.module;
  }

  get decay() {
    return this.#instance.exports.ema_decay(this.#context);
  }

  get numUpdates() {
    return this.#instance.exports.ema_num_updates(this.#context);
  }

  /** Bytes the context holds (shadows, staging window, segment table, backup, resident parameters). */
  get byteLength() {
    return this.#instance.exports.ema_byte_length(this.#context) >>> 0;
  }

  resetNumUpdates(method) {
    this.#instance.check(this.#instance.exports.ema_reset_num_updates(this.#context), method);
  }

  /**
   * Sets what a loaded state holds: the decay and counter when given, and
   * shadows by slot (and profile, 0 when not given).
   */
  loadState({ decay, numUpdates, shadows }, method) {
    const instance = this.#instance;
    if (decay !== undefined) instance.check(instance.exports.ema_set_decay(this.#context, decay), method);
    if (numUpdates !== undefined) instance.check(instance.exports.ema_set_num_updates(this.#context, numUpdates), method);
    const heap = instance.heapF32;
    for (const { slot, data, profile = 0 } of shadows) heap.set(data, this.#shadowOffsets[profile][slot]);
  }

  /** A copy of one shadow of a profile, divided by `divisor` when it is not 1 (a debiased EMA). */
  shadow(slot, divisor = 1, profile = 0) {
    const copy = copyOf(this.#instance.heapF32, this.#shadowOffsets[profile][slot], this.#lengths[slot], Float32Array);
    if (divisor !== 1) divideInPlace(copy, divisor);
    return copy;
  }

  /**
   * Calls `use(views)` with a view of every shadow of a profile, and returns
   * what it returns. The views die with the call: `use` must copy what it
   * keeps and must not call into this arena.
   */
  readShadows(use, profile = 0) {
    return use(this.#shadowViewsOf(profile));
  }

  /**
   * One EMA step over `params` (one { data } per slot, in slot order, each
   * of its slot's length: the caller's resolved entries, with no array made
   * per call). Returns the decay the step used. The caller has checked
   * everything, including the counter: nothing here can fail. `step` is
   * timm's step, or undefined. Returns what the step did: { action, decay,
   * weight, counter, overwrote, nonFinite } (profile 0's decay and weight;
   * with several profiles, `profiles` lists each one's); with `overwrote`
   * (Keras) the caller writes the shadows into its arrays.
   */
  update(params, step) {
    const instance = this.#instance;
    const exports = instance.exports;
    // The step opens (the counter advances), then every parameter streams
    // through the staging window, several small ones per window, each full
    // window applied with one call into Wasm.
    const at = step === undefined ? NO_STEP : BigInt(step);
    const team = this.#workers;
    if (team !== null && this.#threads.background) return this.#updateInBackground(team, params, at);
    instance.check(exports.ema_step_begin_at(this.#context, at, this.#scratch + 8), 'update');
    const result = this.#stepResult();
    if (result.action === 'skipped') return result;
    if (team !== null) {
      this.#updateInWindows(team, params);
      return result;
    }
    // The context applies its own window and table: no pointers go back.
    this.#stage(params, null, (segmentCount) => {
      instance.check(exports.ema_step_apply_staged(this.#context, segmentCount), 'update');
      return false;
    });
    return result;
  }

  /**
   * The open step over the caller's arrays with the workers: the calling
   * thread stages the plan's windows into the ring and the workers apply
   * them (the calling thread too, when they stop keeping up).
   */
  #updateInWindows(team, params) {
    const instance = this.#core;
    const { table, windows, ring, staging } = this.#threads.plan;
    const STAGING_FLOATS = this.#window.floats;
    const heap = instance.heapF32;
    const stage = (window, buffer) => this.#copyWindow(params, windows[window], heap, (staging >>> 2) + buffer * STAGING_FLOATS);
    const words = instance.heapU32;
    const applyWindow = (window) =>
      instance.exports.ema_step_apply_window(
        this.#context, words[(table >>> 2) + 2 * window], words[(table >>> 2) + 2 * window + 1],
        staging + (window % ring) * STAGING_FLOATS * 4, STAGING_FLOATS,
      );
    const status = team.runWindows(this.#context, { plan: table, windowCount: windows.length, staging, stagingFloats: STAGING_FLOATS, ring }, stage, applyWindow);
    instance.check(status, 'update');
  }

  /**
   * A background step: the caller's arrays are copied into the mirror, the
   * step opens, and the workers average from the mirror after update()
   * returns; the next use of the instance waits for them (#instance). A
   * Keras overwrite, which the caller reads at once, is finished here.
   */
  #updateInBackground(team, params, at) {
    const instance = this.#core;
    const exports = instance.exports;
    const heap = instance.heapF32;
    const { mirrorOffsets } = this.#threads;
    // A step that skips reads no parameter: nothing to copy.
    if (exports.ema_next_action(this.#context, at) !== ACTION_SKIP) {
      for (let slot = 0; slot < params.length; slot++) heap.set(params[slot].data, mirrorOffsets[slot]);
    }
    instance.check(exports.ema_resident_step_begin_at(this.#context, at, this.#scratch + 8), 'update');
    const result = this.#stepResult();
    if (result.action === 'skipped') return result;
    this.#rangesStep(team, 'update', !result.overwrote);
    return result;
  }

  /**
   * Applies the open step over the parameter region (resident, or the
   * mirror) in ranges with the workers, then closes it; in the background
   * the close waits for the next use of the instance.
   */
  #rangesStep(team, method, background) {
    const instance = this.#core;
    const exports = instance.exports;
    const context = this.#context;
    const floats = exports.ema_resident_floats(context) >>> 0;
    const applyRange = (begin, end) => exports.ema_resident_apply_range(context, begin, end);
    const close = (status) => {
      instance.check(status, method);
      instance.check(exports.ema_resident_step_end(context), method);
    };
    if (!background) {
      close(team.runRanges(context, floats, applyRange));
      return;
    }
    team.runRanges(context, floats, applyRange, { background: true, onSettled: close });
  }

  /** What the step just planned did, with each profile's decay and weight when there are several. */
  #stepResult() {
    const result = this.#profile0StepResult();
    if (this.#profileCount > 1) result.profiles = this.profileSteps();
    return result;
  }

  /**
   * The first NaN or infinity among `params[slot].data` for the slots whose
   * `averaged[slot]` is true, as { slot, index, value }, or null. The arrays
   * stream through the staging window and C checks each filled window
   * (ema_staging_finite, vectorised): reading them in JS costs twice as much.
   * Only a window that fails is read in JS, to say where. Changes no state
   * (no step is open, so the window and table are free).
   */
  findNonFinite(params, averaged) {
    const { exports } = this.#instance;
    let found = null;
    this.#stage(params, averaged, (segmentCount, staged, staging, segments, words) => {
      if (exports.ema_staging_finite(this.#context, staged) === 1) return false;
      for (let segment = 0, at = 0; segment < segmentCount && found === null; segment++) {
        const [slot, offset, count] = segments.subarray(segment * words, segment * words + 3);
        for (let i = 0; i < count && found === null; i++) {
          const value = staging[at + i];
          if (value - value !== 0) found = { slot, index: offset + i, value };
        }
        at += count;
      }
      return true;
    });
    return found;
  }

  /**
   * How #stage packs the slots (every one, or those whose `include[slot]`
   * is true) into staging windows: several small arrays share a window, a
   * large one is cut across windows. Per window a flat list of (slot,
   * offset, count), SEGMENT_WORDS apart, as the segment table holds them.
   * The list of every slot is fixed by the lengths and kept; the threads
   * build's plan (#windowPlan) is made from it too.
   */
  #windowsOf(include) {
    if (include === null && this.#allWindows !== null) return this.#allWindows;
    const { floats: STAGING_FLOATS, capacity: SEGMENT_CAPACITY, words: SEGMENT_WORDS } = this.#window;
    const windows = [];
    let current = [];
    let staged = 0;
    this.#lengths.forEach((length, slot) => {
      if (include !== null && !include[slot]) return;
      for (let offset = 0; offset < length; ) {
        const count = Math.min(length - offset, STAGING_FLOATS - staged);
        current.push(slot, offset, count);
        staged += count;
        offset += count;
        if (staged === STAGING_FLOATS || current.length === SEGMENT_CAPACITY * SEGMENT_WORDS) {
          windows.push(current);
          current = [];
          staged = 0;
        }
      }
    });
    if (current.length > 0) windows.push(current);
    if (include === null) this.#allWindows = windows;
    return windows;
  }

  /**
   * Copies the caller's values of one window's segments (see #windowsOf)
   * into `target` from index `at`; returns how many floats it copied.
   */
  #copyWindow(params, segments, target, at) {
    const start = at;
    for (let word = 0; word < segments.length; word += this.#window.words) {
      const slot = segments[word];
      const { data } = params[slot];
      const offset = segments[word + 1];
      const count = segments[word + 2];
      // A whole array is copied from its internal slots; a piece goes
      // through a window built from them (never subarray: @@species).
      target.set(count === this.#lengths[slot] ? data : windowOf(data, offset, count, Float32Array), at);
      at += count;
    }
    return at - start;
  }

  /**
   * Packs `params[slot].data` (every slot, or those whose `include[slot]` is
   * true) window by window into the staging window (#windowsOf), describing
   * each piece in the segment table, and calls `full(segmentCount, staged,
   * staging, segments, words)` for every window; stops early when it
   * returns true.
   */
  #stage(params, include, full) {
    const { floats: STAGING_FLOATS, capacity: SEGMENT_CAPACITY, words: SEGMENT_WORDS } = this.#window;
    const buffer = this.#instance.memory.buffer;
    const staging = new Float32Array(buffer, this.#window.staging, STAGING_FLOATS);
    const segments = new Uint32Array(buffer, this.#window.segments, SEGMENT_CAPACITY * SEGMENT_WORDS);
    for (const window of this.#windowsOf(include)) {
      const staged = this.#copyWindow(params, window, staging, 0);
      segments.set(window);
      if (full(window.length / SEGMENT_WORDS, staged, staging, segments, SEGMENT_WORDS)) return;
    }
  }

  /**
   * Writes every shadow of a profile into `params[slot].data` (one per slot,
   * in slot order), divided by `divisor` when it is not 1 (a debiased EMA).
   */
  copyShadowsInto(params, divisor = 1, profile = 0) {
    const views = this.#shadowViewsOf(profile);
    for (let slot = 0; slot < params.length; slot++) {
      if (divisor === 1) writeInto(params[slot].data, views[slot]);
      else writeInto(params[slot].data, divideInPlace(views[slot].slice(), divisor));
    }
  }

  /**
   * Replaces the backup with copies of `arrays` (any lengths). An allocation
   * failure is a RangeError from `outOfMemory()`; nothing else can fail.
   */
  store(arrays, lengths, method, outOfMemory) {
    const instance = this.#instance;
    const lengthsPointer = instance.mallocU32(lengths, method);
    try {
      const status = instance.exports.ema_backup_prepare(this.#context, arrays.length, lengthsPointer);
      if (status === STATUS.OUT_OF_MEMORY) throw outOfMemory();
      instance.check(status, method);
    } finally {
      instance.free(lengthsPointer);
    }
    // The backup was just allocated (memory may have grown): fresh view.
    const heap = instance.heapF32;
    arrays.forEach((data, index) => {
      heap.set(data, instance.exports.ema_backup(this.#context, index) >>> 2);
    });
  }

  /** Writes backup number `index` (of `length` floats) into `target`. */
  restoreInto(index, target, length) {
    const pointer = this.#instance.exports.ema_backup(this.#context, index) >>> 0;
    writeInto(target, new Float32Array(this.#instance.memory.buffer, pointer, length));
  }

  // ---- resident parameters --------------------------------------------------

  /** The resident parameter of `slot`: a view, valid while this arena lives (its memory never grows). */
  paramView(slot) {
    return new Float32Array(this.#instance.memory.buffer, this.#paramOffsets[slot] * 4, this.#lengths[slot]);
  }

  /** The whole memory, which resident views reach: what a resident call touches. */
  get memoryBuffer() {
    return this.#instance.memory.buffer;
  }

  /** One step over the resident parameters; returns what it did, as update(). */
  updateResident(step, method) {
    const at = step === undefined ? NO_STEP : BigInt(step);
    const team = this.#workers;
    if (team !== null) {
      const status = this.#instance.exports.ema_resident_step_begin_at(this.#context, at, this.#scratch + 8);
      if (status === STATUS.NONFINITE) return null;
      this.#core.check(status, method);
      const result = this.#stepResult();
      if (result.action !== 'skipped') this.#rangesStep(team, method, false);
      return result;
    }
    const status = this.#instance.exports.ema_update_resident_at(this.#context, at, this.#scratch + 8);
    if (status === STATUS.NONFINITE) return null;
    this.#instance.check(status, method);
    return this.#stepResult();
  }

  copyToResident(method, profile = 0) {
    this.#instance.check(this.#instance.exports.ema_copy_profile_to_resident(this.#context, profile), method);
  }

  storeResident(method) {
    this.#instance.check(this.#instance.exports.ema_store_resident(this.#context), method);
  }

  /** Puts the stored parameters back; false when nothing was stored. */
  restoreResident(method) {
    const status = this.#instance.exports.ema_restore_resident(this.#context);
    if (status === STATUS.NOTHING_STORED) return false;
    this.#instance.check(status, method);
    return true;
  }

  /** Frees the context; the instance and its memory go with the arena. */
  dispose() {
    // A step in flight finishes first (or throws, when a worker died in it:
    // the arena goes all the same); the workers then drop their instances.
    const team = this.#team;
    this.#team = null;
    try {
      team?.dispose();
    } finally {
      this.#core.exports.ema_destroy(this.#context);
      this.#release();
    }
  }

  #release() {
    this.#context = 0;
    this.#shadowViews = [];
    this.#shadowViewsBuffer = null;
  }

  /**
   * One view per shadow of a profile, kept between calls (making thousands
   * of views per copyTo cost more than the copy) and re-made only when
   * memory has grown.
   */
  #shadowViewsOf(profile) {
    const buffer = this.#instance.memory.buffer;
    if (this.#shadowViewsBuffer !== buffer) {
      this.#shadowViews = [];
      this.#shadowViewsBuffer = buffer;
    }
    this.#shadowViews[profile] ??= this.#shadowOffsets[profile].map((start, slot) => new Float32Array(buffer, start * 4, this.#lengths[slot]));
    return this.#shadowViews[profile];
  }
}

/**
 * Divides every element by `divisor` in float32 (a debiased EMA's read). A
 * float64 quotient of two float32 values rounds to the correctly rounded
 * float32 quotient: 53 bits are more than 2 x 24 + 2.
 */
function divideInPlace(values, divisor) {
  for (let i = 0; i < values.length; i++) values[i] = values[i] / divisor;
  return values;
}

// ---- post-hoc EMA --------------------------------------------------------------

/** Floats of all inputs of one weighted-sum chunk together: 32 MiB. */
const POSTHOC_CHUNK_BUDGET_FLOATS = 8 * 1024 * 1024;

/**
 * Post-hoc EMA in one instance of the core: the coefficients of K
 * snapshots for a target profile (ema_posthoc_coefficients, float64), then
 * their weighted sum chunk by chunk (ema_posthoc_weighted_sum).
 */
export class PosthocSolver {
  #instance;
  #count;
  #chunk; // floats per input per chunk
  #inputs; // K x chunk floats
  #output; // chunk floats
  #coefficients; // K doubles

  constructor(module, count) {
    this.#count = count;
    this.#chunk = Math.max(1024, Math.floor(POSTHOC_CHUNK_BUDGET_FLOATS / count / 16) * 16);
    const bytes = (count + 1) * this.#chunk * 4 + count * 8 * 3 + 64;
    this.#instance = instantiate(module, bytes + 1024 * 1024);
    this.#inputs = this.#instance.malloc(count * this.#chunk * 4, 'reconstruct');
    this.#output = this.#instance.malloc(this.#chunk * 4, 'reconstruct');
    this.#coefficients = this.#instance.malloc(count * 8, 'reconstruct');
  }

  /**
   * The gamma of a profile of relative width `sigmaRel`, by the core's own
   * solver (ema_gamma_of_sigma_rel), so that JS and C agree to the bit. The
   * caller has checked sigmaRel's range.
   */
  gammaOf(sigmaRel) {
    const instance = this.#instance;
    const out = instance.malloc(8, 'reconstruct');
    try {
      instance.check(instance.exports.ema_gamma_of_sigma_rel(sigmaRel, out), 'reconstruct');
      return new DataView(instance.memory.buffer).getFloat64(out, true);
    } finally {
      instance.free(out);
    }
  }

  /** Floats of each input one weightedSum call takes at most. */
  get chunk() {
    return this.#chunk;
  }

  /**
   * Solves for the target (gamma, time) given each snapshot's: returns {
   * coefficients: Float64Array, condition, fitError }, or null when the
   * core finds nothing of the target in the snapshots' span (other refusals
   * throw, naming the status). Keeps the coefficients for weightedSum.
   */
  solve(gammas, times, targetGamma, targetTime) {
    const instance = this.#instance;
    const exports = instance.exports;
    const count = this.#count;
    const arrays = instance.malloc(count * 16 + 8, 'reconstruct');
    try {
      const doubles = new Float64Array(instance.memory.buffer, arrays, 2 * count + 1);
      doubles.set(gammas, 0);
      doubles.set(times, count);
      const status = exports.ema_posthoc_coefficients(
        count, arrays, arrays + count * 8, targetGamma, targetTime, this.#coefficients, arrays + count * 16,
      );
      if (status === STATUS.INVALID_ARGUMENT) return null; // the caller checked the profiles: an inexpressible target
      instance.check(status, 'reconstruct: solving for the coefficients');
      const condition = new Float64Array(instance.memory.buffer, arrays + count * 16, 1)[0];
      const coefficients = new Float64Array(instance.memory.buffer, this.#coefficients, count).slice();
      const fitError = exports.ema_posthoc_fit_error(count, arrays, arrays + count * 8, targetGamma, targetTime, this.#coefficients);
      return { coefficients, condition, fitError };
    } finally {
      instance.free(arrays);
    }
  }

  /**
   * out = sum over snapshots of coefficient x input, in float64 in snapshot
   * order, rounded once: `fill(index, view)` writes snapshot `index`'s values
   * into `view` (n floats, n <= chunk); the result goes into `out` (n floats).
   */
  weightedSum(n, fill, out) {
    const instance = this.#instance;
    const buffer = instance.memory.buffer;
    for (let index = 0; index < this.#count; index++) {
      fill(index, new Float32Array(buffer, this.#inputs + index * this.#chunk * 4, n));
    }
    instance.check(
      instance.exports.ema_posthoc_weighted_sum(n, this.#count, this.#inputs, this.#chunk, this.#coefficients, this.#output),
      'reconstruct: the weighted sum',
    );
    out.set(new Float32Array(buffer, this.#output, n));
  }
}

// ---- the safetensors header parser ------------------------------------------

const DTYPE_NAMES = [null, 'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16',
  'I32', 'U32', 'F32', 'F64', 'I64', 'U64']; // ema_st_dtype in include/ema_safetensors.h
// ignoreBOM: a name that starts with U+FEFF must come back with it.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses a safetensors header with the C parser (src/safetensors.c), in a
 * fresh instance of `module` whose memory is sized for it and dropped after.
 * `header` holds the file's first bytes (the length field and the header);
 * `fileSize` is the whole file's. Returns { tensors: [{ name, dtype, shape,
 * exactShape, offset, byteLength }], metadata: Map }, or throws an Error
 * naming the defect and the byte where it was found.
 */
export function parseSafetensorsHeader(module, header, fileSize, method) {
  // The header, the decoded names (no longer than the header) and the tensor
  // table: ~300 bytes per entry, and an entry takes at least ~45 header
  // bytes, doubled for the table's growth. Untouched pages cost nothing.
  const instance = instantiate(module, 16 * header.length + 65536);
  const exports = instance.exports;
  const input = instance.malloc(header.length + 24, method);
  const out = input + ((header.length + 7) & ~7); // file pointer, then the u64 error offset
  new Uint8Array(instance.memory.buffer).set(header, input);
  const status = exports.ema_st_parse(input, header.length, BigInt(fileSize), out, out + 8);
  if (status !== 0) {
    const where = new DataView(instance.memory.buffer).getBigUint64(out + 8, true);
    throw new Error(
      `ema-wasm: ${method}: not a valid safetensors file: ${instance.string(exports.ema_status_string(status))} ` +
        `(at byte ${where}, status ${status})`,
    );
  }
  const parsed = instance.heapU32[out >>> 2];
  const text = (pointer, length) => instance.string(pointer, length, utf8Decoder);
  const tensors = [];
  const count = exports.ema_st_tensor_count(parsed);
  for (let i = 0; i < count; i++) {
    const rank = exports.ema_st_tensor_rank(parsed, i);
    const shape = [];
    let exactShape = true; // false when a dimension is past 2^53 - 1, which numbers cannot hold
    for (let d = 0; d < rank; d++) {
      const dimension = exports.ema_st_tensor_dim(parsed, i, d);
      exactShape &&= dimension <= BigInt(Number.MAX_SAFE_INTEGER);
      shape.push(Number(dimension));
    }
    tensors.push({
      name: text(exports.ema_st_tensor_name(parsed, i), exports.ema_st_tensor_name_length(parsed, i)),
      dtype: DTYPE_NAMES[exports.ema_st_tensor_dtype(parsed, i)],
      shape,
      exactShape,
      offset: Number(exports.ema_st_tensor_file_offset(parsed, i)),
      byteLength: Number(exports.ema_st_tensor_byte_length(parsed, i)),
    });
  }
  const metadata = new Map();
  const entries = exports.ema_st_metadata_count(parsed);
  for (let i = 0; i < entries; i++) {
    metadata.set(
      text(exports.ema_st_metadata_key(parsed, i), exports.ema_st_metadata_key_length(parsed, i)),
      text(exports.ema_st_metadata_value(parsed, i), exports.ema_st_metadata_value_length(parsed, i)),
    );
  }
  // The instance is dropped whole: no need to free the parse or the input.
  return { tensors, metadata };
}
