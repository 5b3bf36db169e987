//! The SQL of every `Store` method, as async functions over the pool.
//!
//! A function that runs one statement runs it on a pooled connection (autocommit: one
//! statement is one transaction). A function that runs several opens a transaction,
//! runs them on it and commits; returning early (or failing) drops the transaction,
//! which rolls it back. Helpers shared between transactions (`sessions::end_sessions`)
//! take the caller's connection instead; `events::bind_event` binds an event's columns
//! wherever a statement writes one.
//!
//! Every statement filters by scope, except the API key statements (a key names its
//! scope) and the sweep (which serves every scope). Every statement is a static string
//! with bound parameters, but the user listing, which `QueryBuilder` assembles from fixed
//! fragments; sqlx prepares each statement once per connection and caches it.

pub(crate) mod admin;
pub(crate) mod bulk;
pub(crate) mod codes;
pub(crate) mod events;
pub(crate) mod flows;
pub(crate) mod identities;
pub(crate) mod keys;
pub(crate) mod mfa;
pub(crate) mod outbox;
pub(crate) mod passkeys;
pub(crate) mod sessions;
pub(crate) mod throttles;
pub(crate) mod users;
pub(crate) mod webhooks;

#[cfg(test)]
mod plan_tests {
    //! The indexes do what the schema comments promise: with sequential scans priced out
    //! (`enable_seqscan = off`), the hot and the frequent statements still plan without
    //! one — a statement that had no usable index would fall back to a sequential scan
    //! anyway and show it.

    use super::*;
    use crate::testing::TestDb;
    use sqlx::postgres::PgArguments;
    use sqlx::{Arguments, Row};
    use uuid::Uuid;

    async fn plan(db: &TestDb, sql: &str, args: PgArguments) -> String {
        let mut tx = db.store().pool().begin().await.expect("begin");
        sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.expect("set");
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")), args)
            .fetch_all(&mut *tx)
            .await
            .expect("explain");
        rows.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<_>>().join("\n")
    }

    fn args(add: impl FnOnce(&mut PgArguments) -> Result<(), sqlx::error::BoxDynError>) -> PgArguments {
        let mut a = PgArguments::default();
        add(&mut a).expect("bind");
        a
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frequent_statements_use_indexes() {
        let Some(db) = TestDb::create().await else { return };
        let id = crate::codec::id(Uuid::now_v7());
        let hash = vec![0u8; 32];
        let cases: Vec<(&str, &str, PgArguments)> = vec![
            (
                "find_session",
                sessions::FIND_SESSION,
                args(|a| {
                    a.add(hash.clone())?;
                    a.add("a")
                }),
            ),
            (
                "list_sessions",
                sessions::LIST_SESSIONS,
                args(|a| {
                    a.add("a")?;
                    a.add(id)?;
                    a.add(0i64)
                }),
            ),
            (
                "sweep sessions",
                sessions::SWEEP_SESSIONS,
                args(|a| {
                    a.add(0i64)?;
                    a.add(100i64)
                }),
            ),
            (
                "sweep codes",
                sessions::SWEEP_CODES,
                args(|a| {
                    a.add(0i64)?;
                    a.add(100i64)
                }),
            ),
            (
                "login_stats",
                events::LOGIN_STATS,
                args(|a| {
                    a.add("a")?;
                    a.add(0i64)?;
                    a.add(1i64)?;
                    a.add(3_600_000i64)
                }),
            ),
            (
                "list_events",
                events::LIST_EVENTS_BEFORE,
                args(|a| {
                    a.add("a")?;
                    a.add(id)?;
                    a.add(id)?;
                    a.add(10i64)
                }),
            ),
            (
                "find_user by username",
                users::FIND_BY_USERNAME,
                args(|a| {
                    a.add("a")?;
                    a.add("alice")
                }),
            ),
            (
                "find_user by email",
                users::FIND_BY_EMAIL,
                args(|a| {
                    a.add("a")?;
                    a.add("alice@example.com")
                }),
            ),
            (
                "find_identity",
                identities::FIND_IDENTITY,
                args(|a| {
                    a.add("a")?;
                    a.add("github")?;
                    a.add("gh-1")
                }),
            ),
            (
                "list_identities",
                identities::LIST_IDENTITIES,
                args(|a| {
                    a.add("a")?;
                    a.add(id)
                }),
            ),
        ];
        for (name, sql, args) in cases {
            let plan = plan(&db, sql, args).await;
            assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
        }
    }

    /// The bulk statements: an export page is a range of the primary key, in key order,
    /// and its links probes of the identities' key (sorted: a page's worth of rows); the import's checks probe a unique index once per
    /// key (a nested loop), never hash a whole table against the batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_statements_probe_indexes() {
        let Some(db) = TestDb::create().await else { return };
        let id = crate::codec::id(Uuid::now_v7());
        let cases: Vec<(&str, &str, PgArguments)> = vec![
            (
                "export scope",
                bulk::EXPORT_SCOPE,
                args(|a| {
                    a.add("a")?;
                    a.add(10i64)
                }),
            ),
            (
                "export scope after",
                bulk::EXPORT_SCOPE_AFTER,
                args(|a| {
                    a.add("a")?;
                    a.add(id)?;
                    a.add(10i64)
                }),
            ),
            ("export links", bulk::EXPORT_LINKS, args(|a| a.add(vec![id]))),
            ("scopes", bulk::SCOPES, PgArguments::default()),
            (
                "taken ids",
                bulk::TAKEN_IDS,
                args(|a| {
                    a.add(vec!["a"])?;
                    a.add(vec![id])
                }),
            ),
            (
                "taken usernames",
                bulk::TAKEN_USERNAMES,
                args(|a| {
                    a.add(vec!["a"])?;
                    a.add(vec!["alice"])
                }),
            ),
            (
                "taken emails",
                bulk::TAKEN_EMAILS,
                args(|a| {
                    a.add(vec!["a"])?;
                    a.add(vec!["alice@example.com"])
                }),
            ),
            (
                "taken links",
                bulk::TAKEN_LINKS,
                args(|a| {
                    a.add(vec!["a"])?;
                    a.add(vec!["github"])?;
                    a.add(vec!["gh-1"])
                }),
            ),
        ];
        for (name, sql, args) in cases {
            let plan = plan(&db, sql, args).await;
            assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
            assert!(!plan.contains("Hash"), "{name} hashes a table:\n{plan}");
            if name.starts_with("export scope") {
                assert!(!plan.contains("Sort"), "{name} sorts instead of walking the key:\n{plan}");
            }
        }
    }
}
