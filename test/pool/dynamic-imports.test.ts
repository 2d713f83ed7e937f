import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RunspacePool } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
});
afterAll(() => pool.close());

describe('dynamic import() in script blocks', () => {
  test('"import(" in strings, templates, regular expressions and comments reaches the runspace unchanged', async () => {
    const fn = () => ({
      sql: 'SELECT import(x) FROM t',
      template: `use import('fs') here`,
      regex: /import\(/.source,
      length: 'import('.length,
      // a comment mentioning import('x') is not code
    });
    expect(await pool.invoke(fn)).toEqual(fn());
  });

  test('a real relative import() beside such text is still routed to the defining file', async () => {
    const result = await pool.invoke(async (_ctx, n: number) => {
      const label = "await import('./nowhere.js')";
      const { double } = await import('../fixtures/helper.js');
      return `${label}: ${double(n)}`;
    }, { args: [21] });
    expect(result).toBe("await import('./nowhere.js'): 42");
  });

  test('a method named import and a property .import( are not dynamic imports', async () => {
    const result = await pool.invoke(() => {
      const registry = { import(name: string) { return `imported ${name}`; } };
      return registry.import('x');
    });
    expect(result).toBe('imported x');
  });
});
