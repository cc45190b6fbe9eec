//! Running a future to the end even if its caller stops waiting (N4: a refresh that reached the
//! server must be stored, whoever gave up on it). Natively a tokio task; in a browser, where
//! there is no tokio runtime and futures need not be `Send`, the page's microtask queue.

use std::future::Future;

/// Runs `future` on its own and waits for its output. Dropping the returned future stops the
/// waiting, not the work.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn run_detached<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    tokio::spawn(future).await.map_err(|e| e.to_string())
}

/// Runs `future` on its own and waits for its output. Dropping the returned future stops the
/// waiting, not the work.
#[cfg(target_arch = "wasm32")]
pub(crate) async fn run_detached<T: 'static>(
    future: impl Future<Output = T> + 'static,
) -> Result<T, String> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = sender.send(future.await);
    });
    receiver
        .await
        .map_err(|_| "the task ended without an answer".to_owned())
}
