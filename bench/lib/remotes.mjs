// The main thread's view of the baselines that run elsewhere (the workers of
// worker.mjs, the native child processes of native.mjs and profiles-native.mjs):
// request and reply, one request outstanding at a time, and a timed run for
// timing.mjs.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';

import { sizeOf } from './models.mjs';
import { seedOf } from './params.mjs';

/** Request/reply over a stream of messages, one outstanding request at a time. */
export class Remote {
  constructor(name) {
    this.name = name;
    this.waiting = [];
    this.closed = null;
    this.ready = this.next();
  }

  next() {
    if (this.closed !== null) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  receive(reply) {
    const pending = this.waiting.shift();
    if (pending === undefined) return;
    if (reply.ok === false || reply.error !== undefined) {
      pending.reject(new Error(`${this.name}: ${reply.error}`));
    } else {
      pending.resolve(reply);
    }
  }

  fail(error) {
    this.closed = error;
    for (const pending of this.waiting.splice(0)) pending.reject(error);
  }
}

/** Tensor lengths as the native programs take them: runs of equal lengths as LENGTH*COUNT. */
function runLengths(lengths) {
  const items = [];
  for (let i = 0; i < lengths.length; ) {
    let j = i;
    while (j < lengths.length && lengths[j] === lengths[i]) j++;
    items.push(j - i > 1 ? `${lengths[i]}*${j - i}` : `${lengths[i]}`);
    i = j;
  }
  return items.join(',');
}

/**
 * A native benchmark program (bench/native.c, bench/profiles.c) for one
 * model, run as `binary SPEC SEED ...args` on the parameters of params.mjs:
 * one command line in, one JSON line out.
 */
export class ProgramRemote extends Remote {
  constructor(name, binary, spec, args = []) {
    super(name);
    const lengths = spec.map(({ shape }) => sizeOf(shape));
    this.child = spawn(binary, [runLengths(lengths), String(seedOf(spec)), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.child.stderr.on('data', (chunk) => (stderr += chunk));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.receive(JSON.parse(line)));
    this.child.on('error', (error) => this.fail(error));
    this.child.on('exit', (code) => this.fail(new Error(`${name}: exited (code ${code}) ${stderr.trim()}`)));
  }

  request(line) {
    const reply = this.next();
    this.child.stdin.write(`${line}\n`);
    return reply;
  }

  close() {
    this.child.stdin.end('quit\n');
  }
}

/** A worker running bench/lib/worker.mjs with `data` as its workerData. */
export class WorkerRemote extends Remote {
  constructor(name, data) {
    super(name);
    this.worker = new Worker(new URL('./worker.mjs', import.meta.url), { workerData: data });
    this.worker.on('message', (reply) => this.receive(reply));
    this.worker.on('error', (error) => this.fail(new Error(`${name}: ${error.stack ?? error}`)));
    this.worker.on('exit', (code) => this.fail(new Error(`${name}: worker exited (code ${code})`)));
  }

  request(message) {
    const reply = this.next();
    this.worker.postMessage(message);
    return reply;
  }

  close() {
    return this.worker.terminate();
  }
}

/** Waits for every remote to be ready; drops (with a note) those that fail. */
export async function whenReady(remotes, model, notes) {
  await Promise.all(
    Object.entries(remotes).map(([id, remote]) =>
      remote.ready.catch((error) => {
        notes.push(`${model.key}: ${remote.name} skipped: ${error.message.split('\n')[0]}`);
        remote.close?.();
        delete remotes[id];
      }),
    ),
  );
}

/**
 * A variant's run(warmup, reps) for timeInterleaved(), done by a remote:
 * `message` is a worker's request object or the native process's command
 * line ('time copyin'), to which the counts are added. Leaked TF.js tensors
 * become a note.
 */
export function remoteRun(remote, message, model, notes) {
  return async (warmup, reps) => {
    const reply = await remote.request(typeof message === 'string' ? `${message} ${warmup} ${reps}` : { ...message, warmup, reps });
    if (reply.leaked) notes.push(`${model.key}: ${remote.name} leaked ${reply.leaked} tensors`);
    return reply.samples;
  };
}
