//! The change poller's logging while it cannot read the change log: one warning per
//! outage (not one per failed poll, every 100 ms), and one line when it reads again.
//!
//! A test binary of its own: it installs a global log subscriber (the poller logs from a
//! thread of its own, which a thread-local subscriber would not see), and no other test
//! may log into it.

use hallpass_core::store::{Change, Store};
use hallpass_mysql::testing::TestDatabase;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Where the subscriber writes: every line logged, kept.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn count(&self, needle: &str) -> usize {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).lines().filter(|l| l.contains(needle)).count()
    }
}

const LOST: &str = "the change poller cannot read the change log";
const BACK: &str = "the change poller reads the change log again";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_warns_once_and_says_when_it_is_over() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();

    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let mut rx = b.changes().expect("channel");

    for outage in 1..=2 {
        sqlx::raw_sql("RENAME TABLE hallpass_changes TO hallpass_changes_away")
            .execute(a.pool())
            .await
            .expect("rename");
        // Several failed attempts (one every 100 ms), each dropping everything.
        for _ in 0..5 {
            let change = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
            assert_eq!(change.expect("in time").expect("open"), Change::All);
        }
        assert_eq!(captured.count(LOST), outage, "one warning per outage");
        sqlx::raw_sql("RENAME TABLE hallpass_changes_away TO hallpass_changes")
            .execute(a.pool())
            .await
            .expect("rename");
        // Reading again (from a fresh baseline, so only a change published after that
        // line is delivered on its own; earlier ones are covered by a Change::All).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while captured.count(BACK) < outage {
            assert!(tokio::time::Instant::now() < deadline, "the poller never read again");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let change = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
        a.publish_change(&change).await.expect("publish");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let got = tokio::time::timeout_at(deadline, rx.recv()).await.expect("in time").expect("open");
            if got == change {
                break;
            }
            assert_eq!(got, Change::All);
        }
        assert_eq!(captured.count(BACK), outage);
        assert_eq!(captured.count(LOST), outage, "no more warnings once back");
    }
}
