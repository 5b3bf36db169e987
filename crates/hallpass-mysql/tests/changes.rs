//! The change channel of MariaDB (`hallpass_changes` and its poller, see `src/changes.rs`),
//! between two stores on one database as between two processes: a change published
//! through one reaches the other's `changes()`, none published before the subscription
//! does, a row that commits after a later one is still delivered, concurrent publishers
//! are each delivered once, new changes do not wait behind a gap and a full batch, an id
//! that never commits drops everything after the gap wait, and a log that cannot be read
//! drops everything until it can be read again.
//!
//! Each test creates its own database (see `hallpass_mysql::testing`); without a
//! reachable server they are skipped (outside CI, where they fail).

use hallpass_core::store::{Change, Store};
use hallpass_mysql::testing::TestDatabase;
use hallpass_store_tests::fixtures::random_hash;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;
use uuid::Uuid;

/// Far longer than a poll (20 ms), shorter than a gap is waited for (2 s).
const SOON: Duration = Duration::from_millis(1000);

/// The next change, failing the test when none comes within `within`.
async fn next(rx: &mut Receiver<Change>, within: Duration) -> Change {
    tokio::time::timeout(within, rx.recv()).await.expect("a change in time").expect("the channel is open")
}

/// Asserts nothing more arrives for a few polls.
async fn quiet(rx: &mut Receiver<Change>) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    match rx.try_recv() {
        Err(TryRecvError::Empty) => {}
        other => panic!("expected no more changes, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_another_store_from_the_subscription_on() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let before = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
    a.publish_change(&before).await.expect("publish");

    let mut rx = b.changes().expect("MariaDB has a change channel");
    let after = [
        Change::Session(hallpass_core::store::SessionChange {
            scope: hallpass_core::types::Scope::default_scope(),
            hash: random_hash(),
            id: None,
            user: Some(uuid::Uuid::now_v7()),
            ended: true,
        }),
        Change::Key {
            scope: hallpass_core::types::Scope::default_scope(),
            id: uuid::Uuid::nil(),
            revoked: true,
        },
        Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7()),
    ];
    for change in &after {
        a.publish_change(change).await.expect("publish");
    }
    // In order, and not the one published before `changes()`.
    for change in &after {
        assert_eq!(&next(&mut rx, SOON).await, change);
    }
    quiet(&mut rx).await;

    // The store's own changes come back too (other services of this process hear them),
    // and a later subscriber hears what comes after it.
    let mut later = b.changes().expect("channel");
    let own = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
    b.publish_change(&own).await.expect("publish");
    assert_eq!(next(&mut rx, SOON).await, own);
    assert_eq!(next(&mut later, SOON).await, own);
    quiet(&mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_committed_after_a_later_one_is_delivered() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let mut rx = b.changes().expect("channel");

    // A transaction takes an id and holds it; a later id commits first.
    let slow = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
    let mut tx = a.pool().begin().await.expect("begin");
    sqlx::query("INSERT INTO hallpass_changes (payload) VALUES (?)")
        .bind(slow.to_wire())
        .execute(&mut *tx)
        .await
        .expect("insert");
    let fast = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
    a.publish_change(&fast).await.expect("publish");
    assert_eq!(next(&mut rx, SOON).await, fast);

    // The earlier id commits (well within the gap wait): delivered, and nothing else.
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.commit().await.expect("commit");
    assert_eq!(next(&mut rx, SOON).await, slow);
    quiet(&mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_that_never_commits_drops_everything_once() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let mut rx = b.changes().expect("channel");

    let mut tx = a.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO hallpass_changes (payload) VALUES ('k:default:00000000-0000-0000-0000-000000000000:r')",
    )
    .execute(&mut *tx)
    .await
    .expect("insert");
    let fast = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
    a.publish_change(&fast).await.expect("publish");
    assert_eq!(next(&mut rx, SOON).await, fast);
    tx.rollback().await.expect("rollback");

    // The gap is given up after the wait (2 s): everything is dropped, once.
    let started = std::time::Instant::now();
    assert_eq!(next(&mut rx, Duration::from_secs(4)).await, Change::All);
    assert!(started.elapsed() >= Duration::from_millis(1000), "given up after {:?}", started.elapsed());
    quiet(&mut rx).await;
    // And the poller goes on past it.
    let later = Change::Key {
        scope: hallpass_core::types::Scope::default_scope(),
        id: uuid::Uuid::nil(),
        revoked: true,
    };
    a.publish_change(&later).await.expect("publish");
    assert_eq!(next(&mut rx, SOON).await, later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_log_drops_everything_until_it_is_read_again() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let mut rx = b.changes().expect("channel");

    // The table gone: polls fail, and each failure drops everything.
    sqlx::raw_sql("RENAME TABLE hallpass_changes TO hallpass_changes_away")
        .execute(a.pool())
        .await
        .expect("rename");
    assert_eq!(next(&mut rx, SOON).await, Change::All);
    assert_eq!(next(&mut rx, SOON).await, Change::All, "still failing");

    // Back: after a fresh baseline (and one more Change::All), changes flow again. One
    // published before that baseline is covered by the Change::All, so publish until one
    // comes through on its own.
    sqlx::raw_sql("RENAME TABLE hallpass_changes_away TO hallpass_changes")
        .execute(a.pool())
        .await
        .expect("rename");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    'flowing: loop {
        assert!(std::time::Instant::now() < deadline, "changes never flowed again");
        let change = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
        a.publish_change(&change).await.expect("publish");
        while let Ok(Ok(got)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            if got == change {
                break 'flowing;
            }
            assert_eq!(got, Change::All);
        }
    }
    quiet(&mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_are_each_delivered_once() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let mut rx = b.changes().expect("channel");

    // Eight connections publishing at once: their ids commit in whatever order.
    const TASKS: usize = 8;
    const EACH: usize = 50;
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = std::collections::HashSet::new();
    for _ in 0..TASKS {
        let changes: Vec<Change> = (0..EACH)
            .map(|_| Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7()))
            .collect();
        sent.extend(changes.iter().map(Change::to_wire));
        let a = a.clone();
        tasks.spawn(async move {
            for change in &changes {
                a.publish_change(change).await.expect("publish");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("publisher");
    }

    let mut got = std::collections::HashSet::new();
    while got.len() < TASKS * EACH {
        let change = next(&mut rx, Duration::from_secs(3)).await;
        assert_ne!(change, Change::All, "no id stayed missing");
        assert!(got.insert(change.to_wire()), "{change:?} delivered twice");
    }
    assert_eq!(got, sent);
    quiet(&mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_changes_do_not_wait_behind_a_gap_and_a_full_batch() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let mut rx = b.changes().expect("channel");

    // An id held open, then more rows than one poll reads (2,000), then a marker.
    let mut tx = a.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO hallpass_changes (payload) VALUES ('k:default:00000000-0000-0000-0000-000000000000:r')",
    )
    .execute(&mut *tx)
    .await
    .expect("insert");
    let many = vec!["('k:default:00000000-0000-0000-0000-000000000000:r')"; 2100].join(", ");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("INSERT INTO hallpass_changes (payload) VALUES {many}")))
        .execute(a.pool())
        .await
        .expect("rows");
    let started = std::time::Instant::now();
    let marker = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
    a.publish_change(&marker).await.expect("publish");

    // The marker comes well before the gap is given up (2 s). (So many changes at once
    // overflow the channel: a lagging receiver is told, as a cache would drop everything.)
    loop {
        match tokio::time::timeout(Duration::from_secs(3), rx.recv()).await.expect("in time") {
            Ok(change) if change == marker => break,
            Ok(change) => assert_eq!(
                change,
                Change::Key {
                    scope: hallpass_core::types::Scope::default_scope(),
                    id: uuid::Uuid::nil(),
                    revoked: true
                },
                "nothing given up yet"
            ),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(started.elapsed() < Duration::from_millis(1500), "the marker took {:?}", started.elapsed());
    tx.rollback().await.expect("rollback");
}

/// Anyone who may write the log can put any text in it (ASCII: the column refuses the
/// rest). Malformed rows each drop every cached copy, and the changes after them still
/// arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_change_rows_never_stop_the_poller() {
    let Some(db) = TestDatabase::create().await else { return };
    let (a, b) = (db.store().await, db.store_unmigrated().await);
    let mut rx = b.changes().expect("channel");
    for payload in
        [format!("s:{}", "z".repeat(64)), "s:".to_owned(), "u:not-a-uuid".to_owned(), "?".to_owned()]
    {
        sqlx::query("INSERT INTO hallpass_changes (payload) VALUES (?)")
            .bind(&payload)
            .execute(a.pool())
            .await
            .expect("insert");
        assert_eq!(next(&mut rx, SOON).await, Change::All, "{payload:?}");
    }
    let real = Change::user(&hallpass_core::types::Scope::default_scope(), Uuid::now_v7());
    a.publish_change(&real).await.expect("publish");
    assert_eq!(next(&mut rx, SOON).await, real, "invalidation still works");
    quiet(&mut rx).await;
}
