//! SQLite session store get and put on a real file. `cargo bench -p atoauth-sqlx`; CI runs it
//! once in test mode.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use atoauth::store::SessionStore;
use atoauth_sqlx::SqliteStore;
use criterion::{Criterion, criterion_group, criterion_main};

fn sqlite(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime
        .block_on(SqliteStore::open(&dir.path().join("bench.db")))
        .unwrap();
    let session =
        atoauth_testkit::conformance::sample_session("did:plc:ewvi7nxzyoun6zhxrhs64oiz", "s1");
    c.bench_function("store/sqlite_put", |b| {
        b.iter(|| runtime.block_on(store.upsert(black_box(&session))).unwrap());
    });
    c.bench_function("store/sqlite_get", |b| {
        b.iter(|| {
            runtime
                .block_on(store.get(&session.did, &session.session_id))
                .unwrap()
        });
    });
}

criterion_group!(benches, sqlite);
criterion_main!(benches);
