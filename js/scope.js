// The withEma() scope. Inside it the backup holds the training weights and
// the model holds the EMA weights; a store, restore, copy, update, another
// withEma or a dispose at that moment would lose or scramble the training
// weights, so every EMA (core and adapters) refuses them until fn returns.
// The scope opens before the first await, so even withEma calls started
// together (Promise.all) cannot interleave.

export class EmaScope {
  #open = false;

  /** Throws if a withEma() scope is open. */
  check(method) {
    if (this.#open) {
      throw new Error(
        `ema-wasm: ${method}: not allowed while withEma() is running (the training weights are ` +
          'stored for it and would be lost); call it after withEma() returns',
      );
    }
  }

  /**
   * withEma's sequence with the scope open: store(), swapIn(), `await fn()`,
   * then restore() even if swapIn or fn throws (not if store did: then
   * nothing was swapped). Returns what fn returns.
   */
  async run(method, { store, swapIn, restore }, fn) {
    this.check(method);
    this.#open = true;
    try {
      await store();
    } catch (error) {
      this.#open = false;
      throw error;
    }
    try {
      await swapIn();
      return await fn();
    } finally {
      this.#open = false;
      await restore();
    }
  }
}
