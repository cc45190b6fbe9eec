//! The official PDS's own code as an oracle for differential tests: a script in
//! `interop/pds/oracle/` runs under the harness's node with the PDS's npm packages, takes one
//! JSON request on stdin and answers one JSON document on stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::pds::install_interop;

/// Runs `interop/pds/oracle/<script>` with `request` and returns its answer.
///
/// # Panics
/// When node cannot run the script, the script fails, or its answer is not JSON.
pub fn ask(script: &str, request: &serde_json::Value) -> serde_json::Value {
    let dir = install_interop();
    let mut child = Command::new(dir.join("node_modules/.bin/node"))
        .arg(dir.join("oracle").join(script))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node 22 from interop/pds starts");
    let input = serde_json::to_vec(request).expect("the request serialises");
    // Written from a thread, so a large answer cannot block the script while we still write.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .expect("the oracle script runs to the end");
    writer
        .join()
        .expect("the writer thread ends")
        .expect("the request is written to the oracle");
    assert!(
        output.status.success(),
        "oracle {script} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "oracle {script} answered no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
