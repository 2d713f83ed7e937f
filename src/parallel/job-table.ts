/**
 * A pool's jobs (PowerShell's `Get-Job` list) and the job throttle: at most
 * `throttleLimit` thread jobs run at once; the others wait, `NotStarted`, in
 * the order they were started.
 *
 * @module
 */

import { Fifo } from '../util/fifo.js';
import type { Job } from './job.js';
import type { ThreadJob, ThreadJobHost } from './thread-job.js';

export class JobTable {
  readonly #host: ThreadJobHost;
  readonly #throttleLimit: number;
  readonly #jobs = new Map<number, Job<unknown>>();
  readonly #waiting = new Fifo<ThreadJob<unknown>>();
  #running = 0;

  constructor(host: ThreadJobHost, throttleLimit: number) {
    this.#host = host;
    this.#throttleLimit = throttleLimit;
  }

  get throttleLimit(): number {
    return this.#throttleLimit;
  }

  /** Jobs not removed, oldest first. */
  list(): Job<unknown>[] {
    return [...this.#jobs.values()];
  }

  add(job: Job<unknown>): void {
    this.#jobs.set(job.id, job);
  }

  remove = (job: Job<unknown>): void => {
    this.#jobs.delete(job.id);
  };

  /** Queues a thread job behind the throttle. */
  start(job: ThreadJob<unknown>): void {
    this.#waiting.push(job);
    this.#pump();
  }

  /** The pool closed: jobs still waiting for the throttle never run. */
  close(error: Error): void {
    for (const job of this.#waiting.drain()) job.abandon(error);
  }

  #pump(): void {
    while (this.#running < this.#throttleLimit) {
      const job = this.#waiting.shift();
      if (job === undefined) return;
      if (job.isFinished) continue;
      this.#running++;
      void job.run(this.#host).finally(() => {
        this.#running--;
        this.#pump();
      });
    }
  }
}
