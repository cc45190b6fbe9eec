// The measuring half of both benchmark pages (the TS page bundles it from here): each gives `run`
// its client as four functions, so both sides do exactly the same steps.
const mark = (name, value) => localStorage.setItem(`bench:${name}`, String(value));

export async function run({ create, init, signIn, call, wasmBytes }) {
  const $ = (id) => document.getElementById(id);
  try {
    const config = await (await fetch('./config.json')).json();
    const client = await create(config);
    const outcome = await init(client);
    if (!outcome) {
      $('sign-in-form').addEventListener('submit', async (event) => {
        event.preventDefault();
        const clicked = performance.now();
        // The page unloads when the client sends the browser to the PDS (PAR done).
        addEventListener('pagehide', () => mark('par_ms', performance.now() - clicked));
        await signIn(client, $('identifier').value);
      });
      document.body.dataset.state = 'signed-out';
      return;
    }
    // performance.now() counts from this page's navigation: the callback (or the reload).
    mark(outcome.fresh ? 'callback_ms' : 'restore_ms', performance.now());
    const started = performance.now();
    const me = await call(client, outcome);
    mark('call_ms', performance.now() - started);
    mark('js_heap_bytes', performance.memory ? performance.memory.usedJSHeapSize : 0);
    mark('wasm_bytes', wasmBytes());
    $('did').textContent = me.did;
    document.body.dataset.state = outcome.fresh ? 'signed-in' : 'restored';
  } catch (error) {
    $('error').textContent = String(error?.message ?? error);
    document.body.dataset.state = 'error';
  }
}
