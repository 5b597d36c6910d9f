// A minimal TAP producer for the scripts run by t/93-js-sdk.t.
//
//   const t = tap();
//   await t.test('name', async () => { t.equal(a, b, 'what'); ... });
//   t.skip('name', 'reason');
//   t.done();      // prints the plan; exit code 0 even with failures (the
//                  // .t counts the `not ok` lines and checks the plan)
//
// A check that throws inside t.test is one `not ok` line with the error as
// a diagnostic, and the script goes on.  A TODO marks the lines printed
// inside t.todo(reason, fn).

import { inspect } from 'node:util';

export function tap() {
  let n = 0;
  let todo = null;
  const line = (ok, name, directive) => {
    n += 1;
    name = String(name).replace(/[\r\n#]+/g, ' ');
    const dir = directive ?? (todo ? `TODO ${todo}` : null);
    console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${name}${dir ? ` # ${dir}` : ''}`);
    return ok;
  };
  const diag = (msg) => {
    for (const l of String(msg).split('\n')) console.log(`# ${l}`);
  };
  const describe = (v) => (Buffer.isBuffer(v) || v instanceof Uint8Array
    ? `<${v.length} bytes>` : inspect(v, { depth: 4, breakLength: 120 }));
  const t = {
    ok(cond, name) {
      if (!line(!!cond, name)) diag(`  failed: ${name}`);
      return !!cond;
    },
    equal(got, want, name) {
      const ok = got === want;
      if (!line(ok, name)) diag(`       got: ${describe(got)}\n  expected: ${describe(want)}`);
      return ok;
    },
    deepEqual(got, want, name) {
      const ok = JSON.stringify(got) === JSON.stringify(want);
      if (!line(ok, name)) diag(`       got: ${describe(got)}\n  expected: ${describe(want)}`);
      return ok;
    },
    bytesEqual(got, want, name) {
      const g = Buffer.from(got ?? []);
      const ok = Buffer.compare(g, want) === 0;
      if (!line(ok, name)) {
        let i = 0;
        while (i < g.length && i < want.length && g[i] === want[i]) i += 1;
        diag(`  got ${g.length} bytes, expected ${want.length}; first difference at byte ${i}`);
        if (g.length < 200) diag(`  got: ${JSON.stringify(g.toString('latin1'))}`);
      }
      return ok;
    },
    // the promise rejects with an S3 error whose name is `code`
    async rejects(promise, code, name) {
      try {
        const r = await promise;
        line(false, name);
        diag(`  expected the error ${code}, the call succeeded: ${describe(r?.$metadata)}`);
        return false;
      } catch (e) {
        const ok = e?.name === code || e?.Code === code;
        if (!line(ok, name)) {
          diag(`  expected the error ${code}, got ${e?.name}: ${e?.message} (HTTP ${e?.$metadata?.httpStatusCode})`);
        }
        return ok;
      }
    },
    skip(name, reason) { line(true, name, `SKIP ${reason}`); },
    diag,
    async todo(reason, fn) {
      const before = todo;
      todo = reason;
      try { await fn(); } finally { todo = before; }
    },
    async test(name, fn) {
      try {
        await fn();
      } catch (e) {
        line(false, `${name}: no exception`);
        diag(`  ${e?.name}: ${e?.message}` + (e?.$metadata?.httpStatusCode
          ? ` (HTTP ${e.$metadata.httpStatusCode}, request id ${e.$metadata.requestId ?? '-'})` : ''));
        if (process.env.PLINTH_JS_STACK) diag(e?.stack ?? '');
      }
    },
    done() { console.log(`1..${n}`); },
  };
  return t;
}
