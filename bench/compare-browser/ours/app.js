import init, { AtoauthClient } from './pkg/atoauth_browser.js';
import { run } from './bench.js';

const wasm = await init();
await run({
  create: (config) => AtoauthClient.create({
    handleResolver: config.handleResolver,
    plcDirectory: config.plcDirectory,
    insecureAllowLoopbackHttp: true,
    scope: 'atproto',
  }),
  init: async (client) => {
    const session = await client.init();
    return session && { fresh: session.state === 'signed-in' };
  },
  signIn: (client, handle) => client.signIn(handle),
  call: (client) => client.query('com.atproto.server.getSession', {}),
  wasmBytes: () => wasm.memory.buffer.byteLength,
});
