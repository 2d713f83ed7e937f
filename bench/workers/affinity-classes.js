// Classes of the affinity benchmark: one kept at home, one copied.
import { noRunspaceAffinity, runspaceAffinity } from 'runspaces';

export class Tally {
  constructor() {
    this.count = 0;
  }
  add(n) {
    this.count += n;
    return this.count;
  }
}
runspaceAffinity(Tally);

export class Step {
  constructor(size) {
    this.size = size;
  }
  next(n) {
    return n + this.size;
  }
}
noRunspaceAffinity(Step);
