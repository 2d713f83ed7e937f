// The seed's classes, in a module of their own so every runspace can import them.
// JavaScript without decorators uses the function forms; in TypeScript write
// @RunspaceAffinity() / @NoRunspaceAffinity() above the class instead.
import { threadId } from 'node:worker_threads';
import { noRunspaceAffinity, runspaceAffinity, sessionState } from 'runspaces';

/** Bound to the runspace that created it: other runspaces call it through a proxy. */
export class Amplifier {
  constructor(scale = 1) {
    this.scale = scale;
  }

  /** Counts its calls in the home session: a read-modify-write no second thread may enter. */
  getValue(value) {
    const session = sessionState();
    session.set('amplifier.calls', (session.get('amplifier.calls') ?? 0) + 1);
    for (let i = 0; i < 1000; i++) value *= this.scale;
    return value;
  }

  ranOn() {
    return threadId;
  }
}
runspaceAffinity(Amplifier);

/** [NoRunspaceAffinity()]: copied into each runspace, runs there against its own session. */
export class Scaler {
  constructor(factor = 2) {
    this.factor = factor;
  }

  apply(value) {
    const session = sessionState();
    session.set('scaler.calls', (session.get('scaler.calls') ?? 0) + 1);
    return { value: value * this.factor, ranOn: threadId };
  }
}
noRunspaceAffinity(Scaler);
