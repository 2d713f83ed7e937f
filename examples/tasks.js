// A real module whose exported functions runspaces can run with
// pool.invoke({ module, export }): imports and closures work here.
import { createHash } from 'node:crypto';

const rounds = 20_000;

/** Hashes a text many times over: CPU work worth sending to another thread. */
export function stretch(ctx, text) {
  let digest = text;
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest('hex');
  ctx.session.set('stretched', (ctx.session.get('stretched') ?? 0) + 1);
  return digest.slice(0, 12);
}
