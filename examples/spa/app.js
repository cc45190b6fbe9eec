// A single-page app that signs people in with their AT Protocol account and posts for them,
// with no backend: atoauth-browser compiled to WebAssembly (./pkg, made by wasm-bindgen).
import init, { AtoauthClient } from './pkg/atoauth_browser.js';

const $ = (id) => document.getElementById(id);

function render(session) {
  $('signed-out').hidden = Boolean(session);
  $('signed-in').hidden = !session;
  if (session) {
    $('ended').textContent = '';
    $('handle').textContent = session.handle ?? session.did;
    $('did').textContent = session.did;
  }
  document.body.dataset.state = session ? 'signed-in' : 'signed-out';
}

function fail(error) {
  $('error').textContent = String(error?.message ?? error);
  document.body.dataset.state = 'error';
}

try {
  await init();
  // { "handleResolver": "https://bsky.social" } and, for a PDS on this machine,
  // "plcDirectory" and "insecureAllowLoopbackHttp": true.
  const config = await (await fetch('./config.json')).json();
  const client = await AtoauthClient.create(config);
  render(await client.init());

  $('sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await client.signIn($('identifier').value); // leaves for the PDS, comes back here
    } catch (error) {
      fail(error);
    }
  });
  $('sign-in-popup').addEventListener('click', async () => {
    try {
      render(await client.signInPopup($('identifier').value)); // this page stays
    } catch (error) {
      fail(error);
    }
  });
  $('post-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await client.procedure('com.atproto.repo.createRecord', {
        repo: client.did,
        collection: 'app.bsky.feed.post',
        record: { $type: 'app.bsky.feed.post', text: $('text').value, createdAt: new Date().toISOString() },
      });
      $('posted').textContent = created.uri;
    } catch (error) {
      fail(error);
    }
  });
  $('sign-out').addEventListener('click', async () => {
    try {
      await client.signOut();
      render(null);
    } catch (error) {
      fail(error);
    }
  });
  // This tab's session ended without the user signing out (expired, revoked, refused): say why.
  client.onSession((event) => {
    if (event.kind === 'ended' && event.cause !== 'signed-out') {
      $('ended').textContent = `You were signed out: ${event.message}`;
      $('ended').dataset.cause = event.cause;
      render(null);
    }
  });
  // Signed out in another tab: follow.
  client.onOtherTab((notice) => {
    if (notice.kind === 'deleted' && notice.did === client.did) location.reload();
  });
} catch (error) {
  fail(error);
}
