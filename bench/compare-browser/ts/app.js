import { BrowserOAuthClient } from '@atproto/oauth-client-browser';
// The measuring half is shared with the atoauth page, which serves it from its own directory.
import { run } from '../ours/bench.js';

await run({
  create: async (config) => new BrowserOAuthClient({
    handleResolver: config.handleResolver,
    plcDirectoryUrl: config.plcDirectory,
    allowHttp: true,
    responseMode: 'query',
  }),
  init: async (client) => {
    const result = await client.init();
    return result && { fresh: result.state !== undefined, session: result.session };
  },
  signIn: (client, handle) => client.signIn(handle),
  call: async (client, outcome) => {
    const response = await outcome.session.fetchHandler('/xrpc/com.atproto.server.getSession');
    return response.json();
  },
  wasmBytes: () => 0,
});
