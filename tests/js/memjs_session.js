// Runs one memjs client session against a server and prints what each call returned, as JSON.
// Usage: node memjs_session.js HOST:PORT [USER PASS]
// The pytest side (tests/integration/test_memjs.py) decides what is right; this only reports.
'use strict';
const memjs = require('memjs');

const [server, username, password] = process.argv.slice(2);
const client = memjs.Client.create(server, {
    username: username,
    password: password,
    retries: 0,
    timeout: 5,
    conntimeout: 5,
    logger: { log: () => {} },
});

function show(v) {
    if (Buffer.isBuffer(v)) {
        return v.toString('latin1');
    }
    return v;
}

async function main() {
    const out = {};
    const k = 'memjs:' + process.pid;
    out.set = await client.set(k, 'hello', { expires: 0 });
    const got = await client.get(k);
    out.get = show(got.value);
    out.add_existing = await client.add(k, 'x', { expires: 0 });
    out.replace = await client.replace(k, 'world', { expires: 0 });
    out.get2 = show((await client.get(k)).value);
    out.incr_new = (await client.increment(k + ':n', 5, { initial: 10, expires: 0 })).value;
    out.incr = (await client.increment(k + ':n', 5, { expires: 0 })).value;
    out.decr = (await client.decrement(k + ':n', 3, { expires: 0 })).value;
    out.append = await client.append(k, '!');
    out.get3 = show((await client.get(k)).value);
    out.delete = await client.delete(k);
    out.get_deleted = show((await client.get(k)).value);
    out.delete_missing = await client.delete(k);
    await client.set(k + ':f', 'flushme', { expires: 0 });
    const flushed = await client.flush();
    out.flush = Object.values(flushed).every((r) => r === true);
    out.get_flushed = show((await client.get(k + ':f')).value);
    await client.set(k + ':t', 'touchme', { expires: 0 });
    out.touch = await client.touch(k + ':t', 100);
    out.touch_missing = await client.touch(k + ':nope', 100);
    return out;
}

main().then((out) => {
    console.log(JSON.stringify({ ok: true, result: out }));
    client.close();
}, (err) => {
    console.log(JSON.stringify({ ok: false, error: String(err && err.message || err) }));
    client.close();
    process.exitCode = 2;
});
