//! The SQL of every `Store` method, as plain synchronous functions.
//!
//! Each function takes a `&Connection` (a reader, or the writer's open transaction, which
//! derefs to one) and does not manage transactions itself: `crate::pool` wraps every
//! write in `BEGIN IMMEDIATE ... COMMIT`, so a function that runs several statements is
//! atomic as a whole. Statements go through `prepare_cached`, so each is compiled once per
//! connection.
//!
//! Every statement filters by scope. Column lists are spelled once (the `*_cols!` macros,
//! in `crate::rows`) next to the function that reads them back by position.

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
    //! The indexes do what the schema comments promise: the hot and the frequent
    //! statements are index searches, never table scans.

    use crate::connection::{self, Role};
    use crate::migrate;

    /// The `detail` lines of `EXPLAIN QUERY PLAN sql`.
    fn plan(sql: &str) -> Vec<String> {
        let dir = tempfile_dir();
        let mut conn = connection::open(&dir.join("plan.db"), Role::Writer).unwrap();
        migrate::run(&mut conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Unbound parameters plan the same; rusqlite wants them all given, so NULLs.
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3)).unwrap();
        let out = rows.collect::<Result<Vec<_>, _>>().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hallpass-sqlite-plan-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn assert_uses(sql: &str, wanted: &[&str]) {
        let plan = plan(sql);
        for w in wanted {
            assert!(plan.iter().any(|l| l.contains(w)), "{w:?} not in plan {plan:?} of {sql}");
        }
        assert!(!plan.iter().any(|l| l.starts_with("SCAN")), "table scan in {plan:?} of {sql}");
    }

    #[test]
    fn find_session_is_one_indexed_read() {
        let plan = plan(super::sessions::FIND_SESSION);
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert!(plan[0].contains("SEARCH s USING INDEX sessions_token_hash (token_hash=?)"), "{plan:?}");
        assert!(
            plan[1].contains("SEARCH u USING INDEX sqlite_autoindex_users_1 (scope=? AND id=?)"),
            "{plan:?}"
        );
    }

    #[test]
    fn lookups_use_their_indexes() {
        assert_uses(super::users::FIND_BY_ID, &["sqlite_autoindex_users_1"]);
        assert_uses(super::users::FIND_BY_USERNAME, &["users_username_key"]);
        assert_uses(super::users::FIND_BY_EMAIL, &["users_email_key"]);
        assert_uses(super::sessions::LIST_SESSIONS, &["sessions_user"]);
        assert_uses(super::sessions::SWEEP_SESSIONS, &["sessions_valid_until"]);
        assert_uses(super::sessions::COUNT_VALID, &["COVERING INDEX sessions_valid_until"]);
        assert_uses(super::sessions::SWEEP_CODES, &["codes_expires_at"]);
        assert_uses(super::codes::VALID_CODE, &["codes_code_hash"]);
        assert_uses(super::events::LOGIN_STATS, &["COVERING INDEX login_events_at"]);
        assert_uses(super::identities::GET_IDENTITY, &["sqlite_autoindex_identities_1"]);
        assert_uses(super::identities::FIND_IDENTITY, &["identities_client_id"]);
        assert_uses(super::identities::LIST_IDENTITIES, &["sqlite_autoindex_identities_1"]);
        assert!(!plan(super::identities::LIST_IDENTITIES).iter().any(|l| l.contains("TEMP B-TREE")));
    }

    /// An export page is a range of the users' primary key, already in (scope, id) order,
    /// and its links one primary-key probe per user.
    #[test]
    fn export_pages_walk_the_primary_key() {
        // The first page walks the key from its start, stopped by LIMIT; no sort.
        assert_eq!(plan(super::bulk::EXPORT_FIRST), ["SCAN users USING INDEX sqlite_autoindex_users_1"]);
        let after = plan(super::bulk::EXPORT_AFTER);
        assert_eq!(after, ["SEARCH users USING INDEX sqlite_autoindex_users_1 ((scope,id)>(?,?))"]);
        let links = plan(super::bulk::EXPORT_LINKS);
        assert!(
            links.iter().any(
                |l| l.contains("SEARCH identities USING INDEX sqlite_autoindex_identities_1 (user_id=?)")
            ),
            "{links:?}"
        );
    }

    /// Deleting a user makes SQLite look up each child table by the foreign key's columns
    /// (scope, user_id); each lookup must be an index search, not a scan per deleted user.
    #[test]
    fn foreign_key_child_lookups_are_indexed() {
        assert_uses("SELECT 1 FROM sessions WHERE scope = ?1 AND user_id = ?2", &["sessions_user"]);
        assert_uses("SELECT 1 FROM codes WHERE scope = ?1 AND user_id = ?2", &["codes_user"]);
        assert_uses(
            "SELECT 1 FROM identities WHERE scope = ?1 AND user_id = ?2",
            &["sqlite_autoindex_identities_1"],
        );
    }
}
