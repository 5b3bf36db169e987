//! A measurement, not a conformance case: how fast a backend imports and exports users.
//! Each backend runs it from an `#[ignore]`d test (timing belongs in measurements, not in
//! the suite), e.g. `cargo test -p hallpass-sqlite --test import_speed -- --ignored --nocapture`.

use crate::fixtures::{at, identity, rich_user, scope};
use hallpass_core::Store;
use hallpass_core::store::{ExportedUser, ImportOutcome};
use std::time::{Duration, Instant};

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// Users imported (and then exported).
    pub users: usize,
    /// Users per `import_users` call.
    pub batch: usize,
    /// Time spent in `import_users`.
    pub import: Duration,
    /// Time spent in `export_users`, pages of `batch`.
    pub export: Duration,
    /// Time of a second import of every batch (all `existing`).
    pub reimport: Duration,
}

impl Run {
    fn rate(n: usize, d: Duration) -> f64 {
        n as f64 / d.as_secs_f64().max(1e-9)
    }
    /// A one-line report.
    pub fn report(&self, backend: &str) -> String {
        format!(
            "{backend}: imported {} users (batches of {}) in {:.2?} = {:.0} users/s; \
             re-import {:.2?} = {:.0} users/s; export {:.2?} = {:.0} users/s",
            self.users,
            self.batch,
            self.import,
            Self::rate(self.users, self.import),
            self.reimport,
            Self::rate(self.users, self.reimport),
            self.export,
            Self::rate(self.users, self.export),
        )
    }
}

/// Imports `users` users into an empty store, `batch` per call — each with a
/// username, an email, a password hash, an `extra` object and one provider link —
/// then imports them all again, then exports them all; checks the counts and returns
/// the timings. The records are built before the clock starts.
pub async fn import_export(store: &dyn Store, users: usize, batch: usize) -> Run {
    let s = scope("speed");
    let all: Vec<ExportedUser> = (0..users)
        .map(|n| {
            let mut record = rich_user(&s, &format!("user{n}"), n as i64);
            // rich_user's ids are UUIDv7s of whole seconds; unique ones, in order.
            record.user.id = uuid::Uuid::now_v7();
            record.user.updated_at = at(n as i64);
            record.password_hash = Some(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$h{n}"));
            let link = identity(&s, record.user.id, "github", &format!("gh-{n}"));
            ExportedUser { record, identities: vec![link], mfa: Default::default() }
        })
        .collect();

    let started = Instant::now();
    for chunk in all.chunks(batch) {
        let outcome = store.import_users(chunk).await.expect("import_users");
        assert_eq!(outcome, ImportOutcome { inserted: chunk.len() as u64, ..Default::default() });
    }
    let import = started.elapsed();

    let started = Instant::now();
    for chunk in all.chunks(batch) {
        let outcome = store.import_users(chunk).await.expect("import_users");
        assert_eq!(outcome, ImportOutcome { existing: chunk.len() as u64, ..Default::default() });
    }
    let reimport = started.elapsed();

    let started = Instant::now();
    let (mut exported, mut after) = (0, None);
    loop {
        let page = store.export_users(after.take(), batch as u32).await.expect("export_users");
        let Some(last) = page.last() else { break };
        assert!(page.iter().all(|e| e.identities.len() == 1 && e.record.password_hash.is_some()));
        after = Some((last.record.user.scope.clone(), last.record.user.id));
        exported += page.len();
    }
    let export = started.elapsed();
    assert_eq!(exported, users);
    Run { users, batch, import, export, reimport }
}
