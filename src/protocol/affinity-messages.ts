/**
 * What crosses an affinity link: the channel between the main thread and one
 * runspace that carries calls on objects living on the other side. It is a
 * channel of its own, beside the task channel, so a call can reach a runspace
 * whose task loop is waiting on that very call.
 *
 * Both ends speak the same three messages:
 * - `call`: run `op` on exported object `target` (a method, a static method,
 *   a property read or write) with `args`; answered by exactly one `reply`.
 * - `reply`: the outcome of a call.
 * - `release`: the sender dropped proxies; `counts[i]` crossings of object
 *   `ids[i]` are no longer referenced, so its home may forget them.
 *
 * Objects cross inside values as markers (see {@link AffinityMarker}); each
 * `instance` or `class` marker sent counts one crossing at the sender, and
 * the receiver gives every crossing back through `release` when the proxy it
 * made is released or collected.
 *
 * @module
 */

import type { SerializedError } from './error-codec.js';

export type CallOp = 'call' | 'get' | 'set';

export type AffinityMessage =
  | {
      readonly type: 'call';
      readonly call: number;
      readonly target: number;
      readonly op: CallOp;
      readonly name: string;
      readonly args: readonly unknown[];
      /** True when `args` hold copies of classes the receiver may have to import first. */
      readonly loadsClasses: boolean;
    }
  | { readonly type: 'reply'; readonly call: number; readonly ok: true; readonly value: unknown; readonly loadsClasses: boolean }
  | { readonly type: 'reply'; readonly call: number; readonly ok: false; readonly error: SerializedError }
  | { readonly type: 'release'; readonly ids: readonly number[]; readonly counts: readonly number[] };

/** A class as the wire names it. */
export interface WireClassRef {
  readonly module: string;
  readonly name: string;
}

/**
 * An object of a decorated class, or a class, inside a crossing value.
 * - `instance`: an object that stays at its home (the sender, or further
 *   away when the sender holds a proxy); the receiver makes a proxy.
 * - `own`: one of the receiver's own objects coming back; it gets the object.
 * - `copy`: a `NoRunspaceAffinity` instance, fields included.
 * - `class`: a class; `target` is where its statics run when the receiver
 *   has not defined it (affinity classes only).
 */
export type AffinityMarker =
  | {
      readonly kind: 'instance';
      readonly target: number;
      readonly className: string;
      readonly home: number;
      readonly methods: readonly string[];
      readonly properties: readonly string[];
    }
  | { readonly kind: 'own'; readonly target: number }
  | { readonly kind: 'copy'; readonly cls: WireClassRef; readonly fields: Readonly<Record<string, unknown>> }
  | {
      readonly kind: 'class';
      readonly cls: WireClassRef;
      readonly affinity: boolean;
      readonly target: number | undefined;
      readonly home: number;
      readonly statics: readonly string[];
    };
