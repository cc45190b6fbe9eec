//! Several `atoauth` processes on one data directory, one of them killed with `-9` in the middle
//! of `refresh` (issue #21), against the official PDS: whatever point the kill lands on, the next
//! command reads the store without error, the database passes `PRAGMA integrity_check`, and the
//! session is either kept or ended with one line that says to sign in again (`atoauth login`) —
//! never a store error, never a wait on a dead process's lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use atoauth_testkit::{Consent, pds};
use common::login::{base, login, run};
use common::stderr;

fn integrity(database: &Path) -> String {
    let output = std::process::Command::new("sqlite3")
        .arg(database)
        .arg("PRAGMA integrity_check;")
        .output()
        .expect("sqlite3 (apt-get install sqlite3)");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The lines of stderr that are not warnings (the harness's `--insecure-dev` says one).
fn errors(output: &std::process::Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_killed_at_any_point_leaves_a_store_the_next_command_reads() {
    let pds = pds();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (output, err) = login(data, "carol.test", pds.carol(), Consent::Accept, &[]).await;
    assert!(output.status.success(), "{err}");

    let mut table = Vec::new();
    for delay_ms in [0u64, 5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 120] {
        // Four processes refresh at once; the first is killed after `delay_ms`.
        let mut children: Vec<_> = (0..4)
            .map(|_| {
                let mut command = tokio::process::Command::from(base(data));
                command
                    .arg("refresh")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap()
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        children[0].start_kill().unwrap();
        let started = Instant::now();
        for child in children.drain(..).skip(1) {
            let output = child.wait_with_output().await.unwrap();
            let lines = errors(&output);
            assert!(
                output.status.success() || (lines.len() == 1 && lines[0].contains("sign in again")),
                "a surviving refresh either works or says to sign in again: {lines:?}"
            );
        }
        let survivors = started.elapsed();
        assert!(
            survivors < Duration::from_secs(10),
            "nobody waits on the dead process's lock: {survivors:?}"
        );

        let whoami = run(data, &["whoami"]).await;
        let lines = errors(&whoami);
        let outcome = if whoami.status.success() {
            "kept"
        } else {
            assert_eq!(whoami.status.code(), Some(1));
            // Ended by the process that found the spent token ("sign in again"), or already
            // deleted by it ("not signed in"): either way one line that says `atoauth login`.
            assert!(
                lines.len() == 1 && lines[0].contains("atoauth login"),
                "the next command reads the store: {lines:?}"
            );
            "ended (sign in again)"
        };
        assert_eq!(integrity(&data.join("atoauth.db")), "ok");
        table.push(format!(
            "killed after {delay_ms} ms: {outcome}; the other refreshes took {survivors:?}"
        ));
        if outcome != "kept" {
            let (output, err) = login(data, "carol.test", pds.carol(), Consent::Accept, &[]).await;
            assert!(output.status.success(), "{err}");
        }
    }
    eprintln!("{}", table.join("\n"));
}
