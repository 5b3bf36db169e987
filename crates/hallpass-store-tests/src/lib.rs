//! The storage conformance suite: what every [`Store`](hallpass_core::Store) backend must do, stated once and run
//! unchanged against each of them.
//!
//! A backend runs it from its `tests/conformance.rs`:
//!
//! ```ignore
//! async fn make() -> (std::sync::Arc<dyn hallpass_core::Store>, Box<dyn std::any::Any + Send>) {
//!     // a fresh, empty store, and a guard (a temporary directory...) kept alive meanwhile
//! }
//! hallpass_store_tests::conformance!(make);
//! ```
//!
//! [`conformance!`] expands to one `#[tokio::test]` per case of [`cases`], each on a fresh
//! store. The list of cases lives in one place, the `__with_cases!` macro below, so a case
//! added there reaches every backend (and [`CASE_NAMES`]).
//!
//! Cases use fixed instants in whole milliseconds (the precision every backend keeps), so
//! a value read back compares equal to the value written and nothing depends on the
//! system clock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Expands to one `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per case
/// of [`cases`]; each calls `make().await` for a fresh store and a guard that lives until
/// the case ends. `make` is an `async fn() -> (Arc<dyn Store>, Box<dyn Any + Send>)`.
#[macro_export]
macro_rules! conformance {
    (optional $make:path) => {
        $crate::__with_cases!([optional $make]);
    };
    ($make:path) => {
        $crate::__with_cases!([tests $make]);
    };
}

/// The one list of case names. Hands it to `__expand_cases!` with a mode.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($mode:tt) => {
        $crate::__expand_cases! { $mode
            ping_answers,
            insert_and_find_user,
            username_and_email_are_unique_per_scope,
            update_user_conflicts,
            concurrent_registration_has_one_winner,
            list_users_pages_by_id,
            list_users_filters,
            update_user_applies_patch,
            deactivation_ends_sessions,
            delete_user_removes_dependents_keeps_events,
            set_password_hash_ends_sessions,
            rehash_password_compare_and_swap,
            insert_login_stores_session_event_and_last_login,
            max_sessions_ends_the_oldest,
            login_of_a_missing_user_stores_nothing,
            freshen_never_moves_expiry_backwards,
            patch_session_data_merges,
            patch_session_data_over_the_cap_changes_nothing,
            delete_session_variants,
            list_sessions_valid_newest_first,
            new_code_voids_older_of_same_kind,
            set_password_hash_voids_codes,
            email_change_voids_codes,
            update_without_password_or_email_change_keeps_codes,
            redeem_reset_code_semantics,
            concurrent_redeem_is_single_use,
            redeem_confirm_and_login_codes,
            code_owner_reads_without_consuming,
            request_code_counts_known_and_unknown_alike,
            request_code_for_nobody_leaves_nothing_redeemable,
            identities_link_find_and_unlink,
            identity_taken_by_another_user,
            events_newest_first_with_cursor,
            login_stats_hour_buckets,
            login_stats_day_buckets,
            sweep_expired_respects_validity_and_batch,
            count_valid_sessions_counts_every_scope_at_an_instant,
            api_keys_insert_find_list_revoke,
            scope_isolation,
            export_pages_in_scope_and_id_order,
            import_round_trip_keeps_every_field,
            import_again_changes_nothing,
            import_reports_conflicts_and_inserts_the_rest,
            throttle_hits_count_and_expire,
            throttle_concurrent_hits_all_count,
            throttle_clear_and_isolation,
            throttle_get_many_reads_in_order,
            throttle_update_hits_undoes_and_clears,
            throttle_update_reservations_count_under_concurrency,
            throttle_sweep_removes_expired,
            admin_scope_round_trips,
            audit_newest_first_with_cursor,
            scope_figures_count_per_scope,
            outcome_stats_count_every_outcome,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __expand_cases {
    ([tests $make:path] $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $make().await;
                $crate::cases::$case(store).await;
            }
        )*
    };
    ([optional $make:path] $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                // `None`: the backend's server is unreachable outside CI; `make` printed why.
                let Some((store, _guard)) = $make().await else { return };
                $crate::cases::$case(store).await;
            }
        )*
    };
    ([names] $($case:ident),* $(,)?) => {
        /// The name of every case, in the order the suite lists them.
        pub const CASE_NAMES: &[&str] = &[$(stringify!($case)),*];
    };
}

__with_cases!([names]);

/// Builders of records for the cases (usable by a backend's own tests too).
pub mod fixtures {
    use hallpass_core::clock::{from_unix_ms, to_unix_ms};
    use hallpass_core::secret::random_bytes;
    use hallpass_core::store::NewLogin;
    use hallpass_core::*;
    use time::OffsetDateTime;
    use uuid::{NoContext, Timestamp, Uuid};

    /// 2030-01-01T00:00:00Z in milliseconds: the origin of every case's time line,
    /// a multiple of a day.
    pub const T0_MS: i64 = 1_893_456_000_000;
    /// One second in milliseconds.
    pub const SEC: i64 = 1000;
    /// One minute in milliseconds.
    pub const MIN: i64 = 60 * SEC;
    /// One hour in milliseconds.
    pub const HOUR: i64 = 60 * MIN;
    /// One day in milliseconds.
    pub const DAY: i64 = 24 * HOUR;

    /// The instant `ms` milliseconds after [`T0_MS`].
    pub fn at(ms: i64) -> OffsetDateTime {
        from_unix_ms(T0_MS + ms)
    }

    /// A UUIDv7 whose timestamp is `t` (random below it), so ids sort like instants.
    pub fn id_at(t: OffsetDateTime) -> Uuid {
        let ms = to_unix_ms(t);
        let ts = Timestamp::from_unix(
            NoContext,
            ms.div_euclid(1000) as u64,
            (ms.rem_euclid(1000) * 1_000_000) as u32,
        );
        Uuid::new_v7(ts)
    }

    /// A scope by name.
    pub fn scope(name: &str) -> Scope {
        Scope::parse(name).expect("valid scope name")
    }

    /// A provider by name.
    pub fn provider(name: &str) -> ProviderName {
        ProviderName::parse(name).expect("valid provider name")
    }

    /// A JSON object from a `json!` literal.
    pub fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().expect("a JSON object")
    }

    /// A fresh random token hash.
    pub fn random_hash() -> TokenHash {
        TokenHash(random_bytes())
    }

    /// A user record made at [`at`]`(0)`: group `default`, active, no password.
    pub fn user(scope: &Scope, username: Option<&str>, email: Option<&str>) -> UserRecord {
        UserRecord {
            user: User {
                id: Uuid::now_v7(),
                scope: scope.clone(),
                username: username.map(|u| Username::parse(u).expect("valid username")),
                email: email.map(|e| Email::parse(e).expect("valid email")),
                group: Group::default_group(),
                extra: JsonObject::new(),
                active: true,
                confirmation: None,
                confirmed: false,
                created_at: at(0),
                updated_at: at(0),
                last_login_at: None,
            },
            password_hash: None,
        }
    }

    /// Builds and stores a user; returns it.
    pub async fn add_user(
        store: &dyn Store,
        scope: &Scope,
        username: Option<&str>,
        email: Option<&str>,
    ) -> User {
        let record = user(scope, username, email);
        store.insert_user(&record).await.expect("insert_user");
        record.user
    }

    /// Inserts a user whose username was stored before the rules that would now refuse it
    /// (`%` and `\` in usernames, issue #12): such rows stay in databases, and the store
    /// must still handle them (search escaping, lookups).
    pub async fn add_user_stored_before_the_rules(store: &dyn Store, scope: &Scope, username: &str) -> User {
        let mut record = user(scope, Some("placeholder"), None);
        record.user.username = Some(Username::from_stored(username.to_owned()));
        store.insert_user(&record).await.expect("insert_user");
        record.user
    }

    /// A session of `user_id` created at `created`, idle expiry at `expires`, absolute
    /// expiry at `absolute`, with a fresh token hash. Its id is a UUIDv7 of `created`.
    pub fn session(
        scope: &Scope,
        user_id: Uuid,
        created: OffsetDateTime,
        expires: OffsetDateTime,
        absolute: OffsetDateTime,
    ) -> SessionRecord {
        SessionRecord {
            session: Session {
                id: id_at(created),
                user_id,
                scope: scope.clone(),
                created_at: created,
                last_seen_at: created,
                expires_at: expires,
                absolute_expires_at: absolute,
                data: JsonObject::new(),
                client: ClientInfo::default(),
            },
            token_hash: random_hash(),
        }
    }

    /// An event of the scope at `t` (id a UUIDv7 of `t`).
    pub fn event(scope: &Scope, user_id: Option<Uuid>, t: OffsetDateTime, outcome: Outcome) -> LoginEvent {
        LoginEvent {
            id: id_at(t),
            scope: scope.clone(),
            user_id,
            at: t,
            method: "password".into(),
            outcome,
            session_id: None,
            ip: None,
            user_agent: None,
        }
    }

    /// The login that stores `record` with its success event.
    pub fn new_login(record: &SessionRecord, max_sessions: Option<u32>) -> NewLogin {
        let s = &record.session;
        let mut event = event(&s.scope, Some(s.user_id), s.created_at, Outcome::Success);
        event.session_id = Some(s.id);
        event.ip = s.client.ip.clone();
        event.user_agent = s.client.user_agent.clone();
        NewLogin { session: record.clone(), event, max_sessions }
    }

    /// Stores a login of `user_id` created at `created`, valid for an hour idle and a day
    /// absolute; returns the stored session record.
    pub async fn login_at(
        store: &dyn Store,
        scope: &Scope,
        user_id: Uuid,
        created: OffsetDateTime,
    ) -> SessionRecord {
        let record =
            session(scope, user_id, created, created + time::Duration::HOUR, created + time::Duration::DAY);
        store.insert_login(&new_login(&record, None)).await.expect("insert_login");
        record
    }

    /// A code of `kind` for `user_id`, made at `created`, expiring one hour later; returns
    /// the record (its `code_hash` is what a redemption presents).
    pub fn code(scope: &Scope, user_id: Uuid, kind: CodeKind, created: OffsetDateTime) -> CodeRecord {
        CodeRecord {
            code_hash: random_hash(),
            scope: scope.clone(),
            user_id,
            kind,
            created_at: created,
            expires_at: created + time::Duration::HOUR,
        }
    }

    /// Builds and stores a code; returns it.
    pub async fn add_code(
        store: &dyn Store,
        scope: &Scope,
        user_id: Uuid,
        kind: CodeKind,
        created: OffsetDateTime,
    ) -> CodeRecord {
        let record = code(scope, user_id, kind, created);
        store.insert_code(&record).await.expect("insert_code");
        record
    }

    /// A user record with every field set, varied by `n`: group, extra, confirmation,
    /// flags, three distinct instants and (for most `n`) a password hash. Its id is a
    /// UUIDv7 of its `created_at`.
    pub fn rich_user(scope: &Scope, username: &str, n: i64) -> UserRecord {
        let mut r = user(scope, Some(username), Some(&format!("{username}@Example.COM")));
        r.user.id = id_at(at(n * SEC));
        r.user.group = Group::parse(if n % 2 == 0 { "staff" } else { "guests" }).expect("group");
        r.user.extra =
            obj(serde_json::json!({"n": n, "name": username, "nested": {"ü": [1, 2.5, null, true]}}));
        r.user.active = n % 3 != 1;
        r.user.confirmation =
            [None, Some(Confirmation::Pending), Some(Confirmation::Failed)][(n % 3) as usize];
        r.user.confirmed = n % 2 == 1;
        r.user.created_at = at(n * SEC);
        r.user.updated_at = at(n * SEC + 517);
        r.user.last_login_at = (n % 4 != 0).then(|| at(n * SEC + 251));
        r.password_hash =
            (n % 5 != 4).then(|| format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${username}{n}"));
        r
    }

    /// A link with every field set, varied by `n`.
    pub fn rich_identity(
        scope: &Scope,
        user_id: Uuid,
        provider_name: &str,
        client_id: &str,
        n: i64,
    ) -> Identity {
        Identity {
            access_token: Some(format!("token-{n}-{provider_name}")),
            access_token_expiry: (n % 2 == 0).then(|| at(DAY + n * SEC)),
            created_at: at(n * SEC + 7),
            updated_at: at(n * SEC + 11),
            ..identity(scope, user_id, provider_name, client_id)
        }
    }

    /// A link of `user_id` to `provider` as `client_id`, made at [`at`]`(0)`.
    pub fn identity(scope: &Scope, user_id: Uuid, provider_name: &str, client_id: &str) -> Identity {
        Identity {
            user_id,
            scope: scope.clone(),
            provider: provider(provider_name),
            client_id: ClientId::parse(client_id).expect("valid client id"),
            access_token: None,
            access_token_expiry: None,
            created_at: at(0),
            updated_at: at(0),
        }
    }
}

/// The cases. Each takes a fresh, empty store.
pub mod cases {
    use crate::fixtures::*;
    use hallpass_core::store::{self, StoreResult};
    use hallpass_core::*;
    use serde_json::json;
    use std::sync::Arc;
    use time::OffsetDateTime;
    use uuid::Uuid;

    async fn find(store: &dyn Store, scope: &Scope, by: UserRef) -> Option<UserRecord> {
        store.find_user(scope, &by).await.expect("find_user")
    }

    async fn find_id(store: &dyn Store, scope: &Scope, id: Uuid) -> UserRecord {
        find(store, scope, UserRef::Id(id)).await.expect("the user exists")
    }

    fn by_username(typed: &str) -> UserRef {
        UserRef::Username(Username::parse(typed).expect("valid username").key().to_owned())
    }

    fn by_email(typed: &str) -> UserRef {
        UserRef::Email(Email::parse(typed).expect("valid email").key().to_owned())
    }

    async fn has_session(store: &dyn Store, scope: &Scope, record: &SessionRecord) -> bool {
        store.find_session(scope, &record.token_hash).await.expect("find_session").is_some()
    }

    async fn list_all(store: &dyn Store, scope: &Scope, filter: UserFilter) -> Vec<Uuid> {
        let users = store.list_users(scope, &filter, None, 1000).await.expect("list_users");
        users.into_iter().map(|u| u.id).collect()
    }

    fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
        ids.sort();
        ids
    }

    fn assert_err<T: std::fmt::Debug>(r: StoreResult<T>, want: &str) {
        let got = match &r {
            Err(StoreError::UsernameTaken) => "UsernameTaken",
            Err(StoreError::EmailTaken) => "EmailTaken",
            Err(StoreError::IdentityTaken) => "IdentityTaken",
            _ => "",
        };
        assert_eq!(got, want, "expected Err({want}), got {r:?}");
    }

    /// `ping` succeeds on a working store.
    pub async fn ping_answers(store: Arc<dyn Store>) {
        store.ping().await.expect("ping");
    }

    /// A user reads back field for field by id, by username key (any case, NFKC) and by
    /// email key (any case of the domain); unknown refs find nothing.
    pub async fn insert_and_find_user(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let mut alice = user(&s, Some("Alice"), Some("Alice@Example.COM"));
        alice.user.group = Group::parse("staff").expect("group");
        alice.user.extra = obj(json!({"plan": "pro", "n": [1, 2.5, {"x": null}], "ü": "ß"}));
        alice.user.confirmation = Some(Confirmation::Pending);
        alice.user.created_at = at(1234);
        alice.user.updated_at = at(5678);
        alice.user.last_login_at = Some(at(999));
        alice.password_hash = Some("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into());
        store.insert_user(&alice).await.expect("insert_user");

        let found = find_id(store, &s, alice.user.id).await;
        assert_eq!(found.user, alice.user);
        assert_eq!(found.password_hash, alice.password_hash);
        assert_eq!(found.user.username.as_ref().map(Username::as_str), Some("Alice"), "shown as typed");
        assert_eq!(found.user.email.as_ref().map(Email::as_str), Some("Alice@Example.COM"), "shown as typed");

        for typed in ["Alice", "alice", "ALICE", "Ａｌｉｃｅ"] {
            let got = find(store, &s, by_username(typed)).await;
            assert_eq!(got.map(|r| r.user.id), Some(alice.user.id), "username {typed}");
        }
        for typed in ["Alice@Example.COM", "Alice@example.com", "Alice@EXAMPLE.com"] {
            let got = find(store, &s, by_email(typed)).await;
            assert_eq!(got.map(|r| r.user.id), Some(alice.user.id), "email {typed}");
        }
        assert!(find(store, &s, UserRef::Id(Uuid::now_v7())).await.is_none());
        assert!(find(store, &s, by_username("bob")).await.is_none());
        assert!(find(store, &s, by_username("alic")).await.is_none(), "no prefix match");
        assert!(find(store, &s, by_email("bob@example.com")).await.is_none());

        // A user may have only an email, or only a username, and no password.
        let carol = add_user(store, &s, None, Some("carol@example.com")).await;
        let got = find(store, &s, by_email("carol@example.com")).await.expect("carol");
        assert_eq!(got.user, carol);
        assert!(got.user.username.is_none());
        assert!(got.password_hash.is_none());
        let dave = add_user(store, &s, Some("dave"), None).await;
        let got = find(store, &s, by_username("Dave")).await.expect("dave");
        assert_eq!(got.user, dave);
        assert!(got.user.email.is_none());
    }

    /// A username or email another user of the scope holds is refused with
    /// `UsernameTaken` / `EmailTaken` (compared by key), and nothing is stored; users
    /// without a username (or email) do not collide; another scope is free.
    pub async fn username_and_email_are_unique_per_scope(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("Alice"), Some("alice@example.com")).await;

        let r = store.insert_user(&user(&s, Some("ALICE"), Some("other@example.com"))).await;
        assert_err(r, "UsernameTaken");
        let r = store.insert_user(&user(&s, Some("ａｌｉｃｅ"), Some("other2@example.com"))).await;
        assert_err(r, "UsernameTaken");
        let r = store.insert_user(&user(&s, Some("bob"), Some("alice@EXAMPLE.com"))).await;
        assert_err(r, "EmailTaken");
        let r = store.insert_user(&user(&s, None, Some(" alice@Example.Com "))).await;
        assert_err(r, "EmailTaken");
        assert!(find(store, &s, by_username("bob")).await.is_none(), "a refused insert stores nothing");
        assert!(
            find(store, &s, by_email("other@example.com")).await.is_none(),
            "a refused insert stores nothing"
        );
        assert_eq!(list_all(store, &s, UserFilter::default()).await, vec![alice.id]);

        // Absent usernames and emails never collide.
        let e1 = add_user(store, &s, None, Some("e1@example.com")).await;
        let e2 = add_user(store, &s, None, Some("e2@example.com")).await;
        let u1 = add_user(store, &s, Some("u1"), None).await;
        let u2 = add_user(store, &s, Some("u2"), None).await;
        assert_eq!(
            list_all(store, &s, UserFilter::default()).await,
            sorted(vec![alice.id, e1.id, e2.id, u1.id, u2.id])
        );

        // Another scope has its own names.
        let b = scope("b");
        let alice_b = add_user(store, &b, Some("alice"), Some("alice@example.com")).await;
        assert_eq!(find(store, &b, by_username("alice")).await.map(|r| r.user.id), Some(alice_b.id));
        assert_eq!(find(store, &s, by_username("alice")).await.map(|r| r.user.id), Some(alice.id));
    }

    /// `update_user` refuses another user's username or email and leaves the user as it
    /// was; keeping one's own name (in another case) is fine; a dropped name is free again.
    pub async fn update_user_conflicts(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
        let bob = add_user(store, &s, Some("bob"), Some("bob@example.com")).await;

        let patch =
            UserPatch { username: Some(Some(Username::parse("ALICE").expect("u"))), ..Default::default() };
        assert_err(store.update_user(&s, bob.id, &patch, at(1000)).await, "UsernameTaken");
        let patch = UserPatch {
            email: Some(Some(Email::parse("alice@EXAMPLE.COM").expect("e"))),
            ..Default::default()
        };
        assert_err(store.update_user(&s, bob.id, &patch, at(1000)).await, "EmailTaken");
        let patch = UserPatch {
            username: Some(Some(Username::parse("robert").expect("u"))),
            email: Some(Some(Email::parse("alice@example.com").expect("e"))),
            group: Some(Group::parse("staff").expect("g")),
            ..Default::default()
        };
        assert_err(store.update_user(&s, bob.id, &patch, at(1000)).await, "EmailTaken");
        assert_eq!(find_id(store, &s, bob.id).await.user, bob, "a refused update changes nothing");
        assert!(find(store, &s, by_username("robert")).await.is_none());

        // One's own name in another case is no conflict.
        let patch = UserPatch {
            username: Some(Some(Username::parse("ALICE").expect("u"))),
            email: Some(Some(Email::parse("alice@EXAMPLE.com").expect("e"))),
            ..Default::default()
        };
        let updated =
            store.update_user(&s, alice.id, &patch, at(2000)).await.expect("update").expect("alice");
        assert_eq!(updated.username.as_ref().map(Username::as_str), Some("ALICE"));
        assert_eq!(find(store, &s, by_username("alice")).await.map(|r| r.user.id), Some(alice.id));

        // A dropped username is free for someone else.
        let patch = UserPatch { username: Some(None), ..Default::default() };
        let updated = store.update_user(&s, bob.id, &patch, at(3000)).await.expect("update").expect("bob");
        assert!(updated.username.is_none());
        assert!(find(store, &s, by_username("bob")).await.is_none());
        let new_bob = add_user(store, &s, Some("Bob"), None).await;
        assert_eq!(find(store, &s, by_username("bob")).await.map(|r| r.user.id), Some(new_bob.id));
    }

    /// 50 concurrent registrations of one username (or one email): exactly one wins, the
    /// other 49 get `UsernameTaken` (`EmailTaken`), and one user is stored.
    pub async fn concurrent_registration_has_one_winner(store: Arc<dyn Store>) {
        let s = scope("a");
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (store, s) = (store.clone(), s.clone());
            tasks.push(tokio::spawn(async move {
                let name = if i % 2 == 0 { "Racer" } else { "RACER" };
                store.insert_user(&user(&s, Some(name), Some(&format!("racer{i}@example.com")))).await
            }));
        }
        let (mut ok, mut taken) = (0, 0);
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => ok += 1,
                Err(StoreError::UsernameTaken) => taken += 1,
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!((ok, taken), (1, 49));

        let mut tasks = Vec::new();
        for i in 0..50 {
            let (store, s) = (store.clone(), s.clone());
            tasks.push(tokio::spawn(async move {
                store.insert_user(&user(&s, Some(&format!("mailer{i}")), Some("Same@Example.com"))).await
            }));
        }
        let (mut ok, mut taken) = (0, 0);
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => ok += 1,
                Err(StoreError::EmailTaken) => taken += 1,
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!((ok, taken), (1, 49));
        assert_eq!(list_all(store.as_ref(), &s, UserFilter::default()).await.len(), 2);
    }

    /// `list_users` pages in id order: `limit` at a time, each page after the last id of
    /// the one before, until an empty page; other scopes never show.
    pub async fn list_users_pages_by_id(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (s, b) = (scope("a"), scope("b"));
        let mut ids = Vec::new();
        for i in 0..7 {
            ids.push(add_user(store, &s, Some(&format!("user{i}")), None).await.id);
            add_user(store, &b, Some(&format!("user{i}")), None).await;
        }
        let ids = sorted(ids);
        let all = UserFilter::default();

        let page = store.list_users(&s, &all, None, 3).await.expect("list");
        assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), ids[0..3]);
        let page = store.list_users(&s, &all, Some(ids[2]), 3).await.expect("list");
        assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), ids[3..6]);
        let page = store.list_users(&s, &all, Some(ids[5]), 3).await.expect("list");
        assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), ids[6..7]);
        let page = store.list_users(&s, &all, Some(ids[6]), 3).await.expect("list");
        assert!(page.is_empty());

        let everyone = store.list_users(&s, &all, None, 1000).await.expect("list");
        assert_eq!(everyone.iter().map(|u| u.id).collect::<Vec<_>>(), ids);
        assert!(everyone.iter().all(|u| u.scope == s));
        assert_eq!(everyone[0], find_id(store, &s, ids[0]).await.user, "listed users are whole");
    }

    /// `list_users` filters: `query` is a case-insensitive substring of the username or
    /// the email (`%` and `_` are plain characters), `group` exact, `active` exact; they
    /// combine, and combine with paging.
    pub async fn list_users_filters(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let mut alice = user(&s, Some("alice"), Some("alice@wonderland.example"));
        alice.user.group = Group::parse("staff").expect("g");
        let mut bob = user(&s, Some("Bob"), Some("bob@builder.example"));
        bob.user.group = Group::parse("staff").expect("g");
        bob.user.active = false;
        let carol = user(&s, Some("carol"), Some("Carol.ALICE@example.org"));
        let dave = user(&s, None, Some("dave@ALICE.example"));
        let ab = user(&s, Some("a_b"), None);
        let axb = user(&s, Some("axb"), None);
        let zed = user(&s, Some("ZedUpper"), None);
        for u in [&alice, &bob, &carol, &dave, &ab, &axb, &zed] {
            store.insert_user(u).await.expect("insert_user");
        }
        let other = add_user(store, &scope("b"), Some("alice"), None).await;
        let [alice, bob, carol, dave, ab, axb, zed] =
            [alice, bob, carol, dave, ab, axb, zed].map(|u| u.user.id);

        let q = |q: &str| UserFilter { query: Some(q.into()), ..Default::default() };
        assert_eq!(list_all(store, &s, q("ALICE")).await, sorted(vec![alice, carol, dave]));
        assert_eq!(list_all(store, &s, q("bob")).await, vec![bob], "case-insensitive on the username");
        assert_eq!(list_all(store, &s, q("BUILDER")).await, vec![bob], "matches the email");
        assert_eq!(
            list_all(store, &s, q("zEDup")).await,
            vec![zed],
            "case-insensitive on the username alone"
        );
        assert_eq!(list_all(store, &s, q("a_b")).await, vec![ab], "'_' is no wildcard");
        assert_eq!(list_all(store, &s, q("%")).await, Vec::<Uuid>::new(), "'%' is no wildcard");
        assert_eq!(list_all(store, &s, q("zzz")).await, Vec::<Uuid>::new());
        assert!(!list_all(store, &s, q("alice")).await.contains(&other.id));

        let group = |g: &str| UserFilter { group: Some(g.into()), ..Default::default() };
        assert_eq!(list_all(store, &s, group("staff")).await, sorted(vec![alice, bob]));
        assert_eq!(list_all(store, &s, group("default")).await, sorted(vec![carol, dave, ab, axb, zed]));
        assert_eq!(list_all(store, &s, group("nobody")).await, Vec::<Uuid>::new());

        let active = |a: bool| UserFilter { active: Some(a), ..Default::default() };
        assert_eq!(list_all(store, &s, active(false)).await, vec![bob]);
        assert_eq!(list_all(store, &s, active(true)).await, sorted(vec![alice, carol, dave, ab, axb, zed]));

        let f = UserFilter { query: Some("alice".into()), group: Some("default".into()), active: Some(true) };
        assert_eq!(list_all(store, &s, f).await, sorted(vec![carol, dave]));
        let f2 = UserFilter { group: Some("staff".into()), active: Some(true), ..Default::default() };
        assert_eq!(list_all(store, &s, f2).await, vec![alice]);

        // Filters and paging together.
        let want = sorted(vec![alice, carol, dave]);
        let page = store.list_users(&s, &q("alice"), None, 2).await.expect("list");
        assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), want[0..2]);
        let page = store.list_users(&s, &q("alice"), Some(want[1]), 2).await.expect("list");
        assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), want[2..3]);
    }

    /// `update_user` changes exactly the fields the patch names, sets `updated_at`, keeps
    /// the rest, re-keys username and email lookups; `None` for an unknown user.
    pub async fn update_user_applies_patch(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
        let patch = UserPatch {
            username: Some(Some(Username::parse("Alicia").expect("u"))),
            email: Some(None),
            group: Some(Group::parse("staff").expect("g")),
            extra: Some(obj(json!({"k": 1, "nested": {"a": [true]}}))),
            active: None,
            confirmation: Some(Some(Confirmation::Failed)),
            confirmed: Some(true),
        };
        let updated =
            store.update_user(&s, alice.id, &patch, at(5000)).await.expect("update").expect("alice");
        let want = User {
            username: Some(Username::parse("Alicia").expect("u")),
            email: None,
            group: Group::parse("staff").expect("g"),
            extra: obj(json!({"k": 1, "nested": {"a": [true]}})),
            confirmation: Some(Confirmation::Failed),
            confirmed: true,
            updated_at: at(5000),
            ..alice.clone()
        };
        assert_eq!(updated, want);
        assert_eq!(find_id(store, &s, alice.id).await.user, want, "the change is stored");
        assert!(find(store, &s, by_username("alice")).await.is_none());
        assert!(find(store, &s, by_email("alice@example.com")).await.is_none());
        assert_eq!(find(store, &s, by_username("ALICIA")).await.map(|r| r.user.id), Some(alice.id));

        // An empty patch only touches updated_at; confirmation can be cleared.
        let same = store.update_user(&s, alice.id, &UserPatch::default(), at(6000)).await.expect("update");
        assert_eq!(same, Some(User { updated_at: at(6000), ..want.clone() }));
        let patch = UserPatch {
            confirmation: Some(None),
            email: Some(Some(Email::parse("new@example.com").expect("e"))),
            ..Default::default()
        };
        let updated =
            store.update_user(&s, alice.id, &patch, at(7000)).await.expect("update").expect("alice");
        assert_eq!(updated.confirmation, None);
        assert_eq!(updated.email.as_ref().map(Email::as_str), Some("new@example.com"));
        assert_eq!(updated.created_at, alice.created_at);
        assert_eq!(find(store, &s, by_email("new@example.com")).await.map(|r| r.user.id), Some(alice.id));

        let none =
            store.update_user(&s, Uuid::now_v7(), &UserPatch::default(), at(8000)).await.expect("update");
        assert!(none.is_none());
    }

    /// Deactivating a user (`active: Some(false)`) ends all of the user's sessions at once;
    /// reactivating brings none back; other users and other patches keep theirs.
    pub async fn deactivation_ends_sessions(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let a1 = login_at(store, &s, alice.id, at(1000)).await;
        let a2 = login_at(store, &s, alice.id, at(2000)).await;
        let b1 = login_at(store, &s, bob.id, at(1500)).await;

        let patch = UserPatch { group: Some(Group::parse("g2").expect("g")), ..Default::default() };
        store.update_user(&s, bob.id, &patch, at(2500)).await.expect("update").expect("bob");
        assert!(has_session(store, &s, &b1).await, "other patches end no session");

        let off = UserPatch { active: Some(false), ..Default::default() };
        let updated = store.update_user(&s, alice.id, &off, at(3000)).await.expect("update").expect("alice");
        assert!(!updated.active);
        assert!(!has_session(store, &s, &a1).await);
        assert!(!has_session(store, &s, &a2).await);
        assert!(store.list_sessions(&s, alice.id, at(3000)).await.expect("list").is_empty());
        assert!(has_session(store, &s, &b1).await, "another user's session stays");

        let on = UserPatch { active: Some(true), ..Default::default() };
        store.update_user(&s, alice.id, &on, at(4000)).await.expect("update").expect("alice");
        assert!(!has_session(store, &s, &a1).await, "reactivation restores nothing");
        assert!(find_id(store, &s, alice.id).await.user.active);
    }

    /// `delete_user` removes the user, their sessions, codes and provider links, keeps
    /// their login events, frees their names and identities; a second delete is `false`.
    pub async fn delete_user_removes_dependents_keeps_events(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let a_session = login_at(store, &s, alice.id, at(1000)).await;
        store
            .insert_event(&event(&s, Some(alice.id), at(2000), Outcome::WrongPassword))
            .await
            .expect("event");
        let a_reset = add_code(store, &s, alice.id, CodeKind::Reset, at(3000)).await;
        let a_confirm = add_code(store, &s, alice.id, CodeKind::Confirm, at(3000)).await;
        store.upsert_identity(&identity(&s, alice.id, "github", "gh-1")).await.expect("identity");
        let b_session = login_at(store, &s, bob.id, at(1000)).await;
        let b_confirm = add_code(store, &s, bob.id, CodeKind::Confirm, at(3000)).await;
        store.upsert_identity(&identity(&s, bob.id, "github", "gh-2")).await.expect("identity");

        assert!(store.delete_user(&s, alice.id).await.expect("delete_user"));

        assert!(find(store, &s, UserRef::Id(alice.id)).await.is_none());
        assert!(find(store, &s, by_username("alice")).await.is_none());
        assert!(find(store, &s, by_email("alice@example.com")).await.is_none());
        assert!(!has_session(store, &s, &a_session).await);
        assert!(store.list_sessions(&s, alice.id, at(1000)).await.expect("list").is_empty());
        let now = at(4000);
        assert_eq!(store.redeem_reset_code(&s, &a_reset.code_hash, now, "h").await.expect("redeem"), None);
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &a_confirm.code_hash, now).await.expect("redeem"),
            None
        );
        let github = provider("github");
        assert!(store.get_identity(&s, alice.id, &github).await.expect("get").is_none());
        assert!(store.find_identity(&s, &github, "gh-1").await.expect("find").is_none());
        assert!(store.list_identities(&s, alice.id).await.expect("list").is_empty());
        let events = store.list_events(&s, alice.id, None, 100).await.expect("events");
        assert_eq!(events.len(), 2, "login events outlive the user");

        // Bob is untouched.
        assert!(has_session(store, &s, &b_session).await);
        assert!(store.find_identity(&s, &github, "gh-2").await.expect("find").is_some());
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &b_confirm.code_hash, now).await.expect("redeem"),
            Some(bob.id)
        );

        assert!(!store.delete_user(&s, alice.id).await.expect("delete_user"), "already gone");
        assert!(!store.delete_user(&s, Uuid::now_v7()).await.expect("delete_user"));

        // Names and identities are free again.
        let again = add_user(store, &s, Some("Alice"), Some("alice@example.com")).await;
        store.upsert_identity(&identity(&s, again.id, "github", "gh-1")).await.expect("identity is free");
    }

    /// `set_password_hash` stores the hash and ends every session of the user (no one
    /// else's); `false` for an unknown user.
    pub async fn set_password_hash_ends_sessions(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let mut rec = user(&s, Some("alice"), None);
        rec.password_hash = Some("old".into());
        store.insert_user(&rec).await.expect("insert");
        let alice = rec.user;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let a1 = login_at(store, &s, alice.id, at(1000)).await;
        let a2 = login_at(store, &s, alice.id, at(2000)).await;
        let b1 = login_at(store, &s, bob.id, at(1000)).await;

        assert!(store.set_password_hash(&s, alice.id, "new", at(3000)).await.expect("set"));
        assert_eq!(find_id(store, &s, alice.id).await.password_hash.as_deref(), Some("new"));
        assert!(!has_session(store, &s, &a1).await);
        assert!(!has_session(store, &s, &a2).await);
        assert!(has_session(store, &s, &b1).await);

        // A user without a password can be given one.
        assert!(store.set_password_hash(&s, bob.id, "bobs", at(3000)).await.expect("set"));
        assert_eq!(find_id(store, &s, bob.id).await.password_hash.as_deref(), Some("bobs"));
        assert!(!has_session(store, &s, &b1).await);

        assert!(!store.set_password_hash(&s, Uuid::now_v7(), "x", at(3000)).await.expect("set"));
    }

    /// `rehash_password` replaces the hash only while it still equals `old`, and ends no
    /// session.
    pub async fn rehash_password_compare_and_swap(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let mut rec = user(&s, Some("alice"), None);
        rec.password_hash = Some("h1".into());
        store.insert_user(&rec).await.expect("insert");
        let alice = rec.user;
        let a1 = login_at(store, &s, alice.id, at(1000)).await;
        let hash = |store| async move { find_id(store, &scope("a"), alice.id).await.password_hash };

        assert!(!store.rehash_password(&s, alice.id, "wrong", "h2").await.expect("rehash"));
        assert_eq!(hash(store).await.as_deref(), Some("h1"));
        assert!(store.rehash_password(&s, alice.id, "h1", "h2").await.expect("rehash"));
        assert_eq!(hash(store).await.as_deref(), Some("h2"));
        assert!(has_session(store, &s, &a1).await, "a rehash ends no session");
        assert!(!store.rehash_password(&s, alice.id, "h1", "h3").await.expect("rehash"), "stale old hash");
        assert_eq!(hash(store).await.as_deref(), Some("h2"));

        let bob = add_user(store, &s, Some("bob"), None).await;
        assert!(!store.rehash_password(&s, bob.id, "", "h").await.expect("rehash"), "no password to replace");
        assert!(find_id(store, &s, bob.id).await.password_hash.is_none());
        assert!(!store.rehash_password(&s, Uuid::now_v7(), "h2", "h").await.expect("rehash"));
    }

    /// `insert_login` stores the session (found by its token hash with its user, whatever
    /// its expiry), the success event, and sets the user's `last_login_at`.
    pub async fn insert_login_stores_session_event_and_last_login(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
        let mut rec = session(&s, alice.id, at(10_000), at(10_000 + HOUR), at(10_000 + DAY));
        rec.session.data = obj(json!({"cart": [1, 2], "theme": "dark"}));
        rec.session.client =
            ClientInfo { ip: Some("203.0.113.7".into()), user_agent: Some("Mozilla/5.0 (X11)".into()) };
        let login = new_login(&rec, None);
        store.insert_login(&login).await.expect("insert_login");

        let (found, u) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
        assert_eq!(found, rec.session);
        assert_eq!(u.id, alice.id);
        assert_eq!(u.username, alice.username);
        assert_eq!(u.last_login_at, Some(at(10_000)));
        assert_eq!(find_id(store, &s, alice.id).await.user.last_login_at, Some(at(10_000)));
        assert_eq!(
            store.list_events(&s, alice.id, None, 10).await.expect("events"),
            vec![login.event.clone()]
        );

        let later = login_at(store, &s, alice.id, at(20_000)).await;
        assert_eq!(find_id(store, &s, alice.id).await.user.last_login_at, Some(at(20_000)));
        let (_, u) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
        assert_eq!(u.last_login_at, Some(at(20_000)), "find_session returns the current user");
        assert!(has_session(store, &s, &later).await);

        // The store does not judge expiry: a session long expired is still found.
        let old = session(&s, alice.id, at(-10 * DAY), at(-10 * DAY + 1), at(-10 * DAY + 2));
        store.insert_login(&new_login(&old, None)).await.expect("insert_login");
        let (found, _) =
            store.find_session(&s, &old.token_hash).await.expect("find").expect("expired session");
        assert_eq!(found, old.session);

        assert!(store.find_session(&s, &random_hash()).await.expect("find").is_none());
    }

    /// With `max_sessions`, the user's oldest sessions beyond the cap (the new one counts)
    /// end in the same write; other users' sessions never do; without it, no cap.
    pub async fn max_sessions_ends_the_oldest(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let b1 = login_at(store, &s, bob.id, at(500)).await;
        let mut all = Vec::new();
        let mut log = |n: i64, cap: Option<u32>| {
            let rec = session(&s, alice.id, at(n * 1000), at(n * 1000 + HOUR), at(n * 1000 + DAY));
            all.push(rec.clone());
            async move { store.insert_login(&new_login(&rec, cap)).await.expect("insert_login").ended }
        };
        assert_eq!(log(1, Some(3)).await, 0, "nothing ends below the cap");
        assert_eq!(log(2, Some(3)).await, 0);
        assert_eq!(log(3, Some(3)).await, 0);
        let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        let live = || async { ids(store.list_sessions(&s, alice.id, at(10_000)).await.expect("list")) };
        assert_eq!(log(4, Some(3)).await, 1, "the login reports how many the cap ended");
        assert_eq!(log(5, Some(2)).await, 2);
        assert_eq!(log(6, None).await, 0);
        let [s1, s2, s3, s4, s5, s6] = [0, 1, 2, 3, 4, 5].map(|i| all[i].clone());
        assert!(!has_session(store, &s, &s1).await);
        assert!(!has_session(store, &s, &s2).await);
        assert!(!has_session(store, &s, &s3).await);
        assert_eq!(live().await, vec![s6.session.id, s5.session.id, s4.session.id]);
        assert!(has_session(store, &s, &b1).await, "another user's sessions are not counted");

        // Step by step: with cap 1 only the newest stays.
        let s7 = session(&s, alice.id, at(7000), at(7000 + HOUR), at(7000 + DAY));
        let stored = store.insert_login(&new_login(&s7, Some(1))).await.expect("insert_login");
        assert_eq!(stored.ended, 3);
        assert_eq!(live().await, vec![s7.session.id]);
        assert!(has_session(store, &s, &b1).await);
    }

    /// A login for a user that does not exist (deleted while its password was checked)
    /// fails and stores nothing: no session, no event, and no other session ends.
    pub async fn login_of_a_missing_user_stores_nothing(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let kept = login_at(store, &s, alice.id, at(1000)).await;
        let ghost_id = Uuid::now_v7();
        let ghost = session(&s, ghost_id, at(2000), at(2000 + HOUR), at(2000 + DAY));
        let got = store.insert_login(&new_login(&ghost, Some(1))).await;
        assert!(matches!(got, Err(StoreError::Other(_))), "{got:?}");
        assert!(store.find_session(&s, &ghost.token_hash).await.expect("find").is_none());
        assert!(store.list_events(&s, ghost_id, None, 10).await.expect("events").is_empty());
        // The same user id in another scope is another (missing) user.
        let elsewhere = session(&scope("b"), alice.id, at(3000), at(3000 + HOUR), at(3000 + DAY));
        assert!(store.insert_login(&new_login(&elsewhere, Some(1))).await.is_err());
        assert!(store.find_session(&scope("b"), &elsewhere.token_hash).await.expect("find").is_none());
        assert!(has_session(store, &s, &kept).await, "nothing of alice's ended");
    }

    /// `freshen_session` sets `last_seen_at` and moves `expires_at` forward, never back;
    /// `absolute_expires_at` never moves; `None` for an unknown hash.
    pub async fn freshen_never_moves_expiry_backwards(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let rec = session(&s, alice.id, at(0), at(60_000), at(600_000));
        store.insert_login(&new_login(&rec, None)).await.expect("insert_login");

        let fresh =
            store.freshen_session(&s, &rec.token_hash, at(10_000), at(70_000)).await.expect("freshen");
        let want = Session { last_seen_at: at(10_000), expires_at: at(70_000), ..rec.session.clone() };
        assert_eq!(fresh, Some(want.clone()));
        let (stored, _) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
        assert_eq!(stored, want);

        let fresh =
            store.freshen_session(&s, &rec.token_hash, at(20_000), at(65_000)).await.expect("freshen");
        let want = Session { last_seen_at: at(20_000), ..want };
        assert_eq!(fresh, Some(want.clone()), "expires_at never moves backwards");
        let (stored, _) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
        assert_eq!(stored, want);

        assert!(store.freshen_session(&s, &random_hash(), at(1), at(2)).await.expect("freshen").is_none());
    }

    /// `patch_session_data` applies an RFC 7396 merge patch to the stored data (null
    /// removes, objects merge, anything else replaces) and keeps it; other sessions keep
    /// theirs; `None` for an unknown hash.
    pub async fn patch_session_data_merges(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let mut rec = session(&s, alice.id, at(0), at(HOUR), at(DAY));
        rec.session.data = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "keep": true}));
        store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
        let mut other = session(&s, alice.id, at(1), at(HOUR), at(DAY));
        other.session.data = obj(json!({"a": 1}));
        store.insert_login(&new_login(&other, None)).await.expect("insert_login");

        let patch = json!({"a": null, "b": {"c": 5, "e": [1, 2]}, "f": "x", "keep": null});
        let got = store
            .patch_session_data(&s, &rec.token_hash, &patch, NO_CAP)
            .await
            .expect("patch")
            .expect("session");
        let want = obj(json!({"b": {"c": 5, "d": 3, "e": [1, 2]}, "f": "x"}));
        assert_eq!(got.data, want);
        assert_eq!(got.id, rec.session.id);
        let (stored, _) = store.find_session(&s, &rec.token_hash).await.expect("find").expect("session");
        assert_eq!(stored.data, want);

        let got =
            store.patch_session_data(&s, &rec.token_hash, &json!({"b": 7}), NO_CAP).await.expect("patch");
        assert_eq!(got.map(|s| s.data), Some(obj(json!({"b": 7, "f": "x"}))));
        let got = store.patch_session_data(&s, &rec.token_hash, &json!({}), NO_CAP).await.expect("patch");
        assert_eq!(got.map(|s| s.data), Some(obj(json!({"b": 7, "f": "x"}))));

        let (stored, _) = store.find_session(&s, &other.token_hash).await.expect("find").expect("session");
        assert_eq!(stored.data, obj(json!({"a": 1})));
        assert!(
            store
                .patch_session_data(&s, &random_hash(), &json!({"a": 1}), NO_CAP)
                .await
                .expect("patch")
                .is_none()
        );
    }

    /// A cap on session data no case of the suite reaches.
    const NO_CAP: usize = 1 << 20;

    /// `patch_session_data` with a cap: a merge whose result would be larger than the cap
    /// (compact JSON) fails with `TooLarge` and changes nothing; one that lands exactly on
    /// it, or shrinks data already over it, passes. Concurrent patches never add up beyond
    /// the cap: each is judged on what the previous ones left.
    pub async fn patch_session_data_over_the_cap_changes_nothing(store: Arc<dyn Store>) {
        let s = scope("a");
        let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
        let mut rec = session(&s, alice.id, at(0), at(HOUR), at(DAY));
        rec.session.data = obj(json!({"a": "x".repeat(50)}));
        store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
        let size = |d: &JsonObject| serde_json::to_vec(d).expect("json").len();
        let stored = || async {
            store.find_session(&s, &rec.token_hash).await.expect("find").expect("session").0.data
        };
        let before = stored().await;
        assert_eq!(size(&before), 58);

        // {"a":"x...x","b":"..."}: 58 + 7 + len bytes.
        let over = store.patch_session_data(&s, &rec.token_hash, &json!({"b": "y".repeat(36)}), 100).await;
        assert!(matches!(over, Err(StoreError::TooLarge { field: "data", max_bytes: 100 })), "{over:?}");
        assert_eq!(stored().await, before, "nothing half-written");
        let exact = store.patch_session_data(&s, &rec.token_hash, &json!({"b": "y".repeat(35)}), 100).await;
        assert_eq!(size(&exact.expect("patch").expect("session").data), 100);
        assert_eq!(size(&stored().await), 100);
        // Already over a lower cap: a patch that shrinks the data passes.
        let smaller = store.patch_session_data(&s, &rec.token_hash, &json!({"b": null}), 80).await;
        assert_eq!(smaller.expect("patch").expect("session").data, before);

        // Twenty concurrent patches of 20 bytes each against room for about five.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (store, s, hash) = (store.clone(), s.clone(), rec.token_hash);
            tasks.push(tokio::spawn(async move {
                store.patch_session_data(&s, &hash, &json!({ format!("k{i:02}"): "z".repeat(12) }), 160).await
            }));
        }
        let mut landed = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(Some(_)) => landed += 1,
                Err(StoreError::TooLarge { .. }) => {}
                other => panic!("unexpected: {other:?}"),
            }
        }
        let data = stored().await;
        assert!(size(&data) <= 160, "{} bytes", size(&data));
        assert_eq!(data.len(), 1 + landed, "every patch that answered Ok landed, no other");
        assert_eq!(landed, 4, "58 bytes + 4 x 21 = 142; a fifth would make 163");
    }

    /// Ending sessions: by token hash (returns it once), one by id (only the user's own),
    /// all but one, all.
    pub async fn delete_session_variants(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let [a1, a2, a3, a4] = [
            login_at(store, &s, alice.id, at(1000)).await,
            login_at(store, &s, alice.id, at(2000)).await,
            login_at(store, &s, alice.id, at(3000)).await,
            login_at(store, &s, alice.id, at(4000)).await,
        ];
        let b1 = login_at(store, &s, bob.id, at(1000)).await;

        let gone = store.delete_session_by_hash(&s, &a1.token_hash).await.expect("delete");
        assert_eq!(gone, Some(a1.session.clone()));
        assert!(!has_session(store, &s, &a1).await);
        assert_eq!(store.delete_session_by_hash(&s, &a1.token_hash).await.expect("delete"), None);

        assert!(store.delete_session(&s, alice.id, a2.session.id).await.expect("delete"));
        assert!(!has_session(store, &s, &a2).await);
        assert!(!store.delete_session(&s, alice.id, a2.session.id).await.expect("delete"));
        assert!(!store.delete_session(&s, bob.id, a3.session.id).await.expect("delete"), "not bob's session");
        assert!(has_session(store, &s, &a3).await);

        assert_eq!(store.delete_sessions(&s, alice.id, Some(a4.session.id)).await.expect("delete"), 1);
        assert!(!has_session(store, &s, &a3).await);
        assert!(has_session(store, &s, &a4).await);
        assert_eq!(store.delete_sessions(&s, alice.id, None).await.expect("delete"), 1);
        assert!(!has_session(store, &s, &a4).await);
        assert_eq!(store.delete_sessions(&s, alice.id, None).await.expect("delete"), 0);
        assert!(has_session(store, &s, &b1).await, "bob's session outlives all of it");
    }

    /// `list_sessions` shows the user's sessions valid at `now` (before both the idle and
    /// the absolute expiry, which are exclusive), newest first.
    pub async fn list_sessions_valid_newest_first(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let now = at(100_000);
        let insert = |created: i64, expires: i64, absolute: i64, who: Uuid| {
            let rec = session(&s, who, at(created), at(expires), at(absolute));
            async move {
                store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
                rec.session
            }
        };
        let old = insert(1000, 200_000, 1_000_000, alice.id).await;
        let newest = insert(3000, 100_001, 1_000_000, alice.id).await;
        let middle = insert(2000, 200_000, 100_001, alice.id).await;
        insert(4000, 100_000, 1_000_000, alice.id).await; // idle expiry reached at `now`
        insert(5000, 99_999, 1_000_000, alice.id).await; // idle expiry passed
        insert(6000, 200_000, 100_000, alice.id).await; // absolute expiry reached
        insert(7000, 200_000, 1_000_000, bob.id).await;

        let listed = store.list_sessions(&s, alice.id, now).await.expect("list");
        assert_eq!(listed, vec![newest, middle, old.clone()]);
        let listed = store.list_sessions(&s, alice.id, at(150_000)).await.expect("list");
        assert_eq!(listed, vec![old]);
        assert!(store.list_sessions(&s, alice.id, at(300_000)).await.expect("list").is_empty());
        assert!(store.list_sessions(&s, Uuid::now_v7(), now).await.expect("list").is_empty());
    }

    /// A new code voids the user's older codes of the same kind only: not codes of other
    /// kinds, not other users' codes.
    pub async fn new_code_voids_older_of_same_kind(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let reset1 = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
        let confirm1 = add_code(store, &s, alice.id, CodeKind::Confirm, at(0)).await;
        let login1 = add_code(store, &s, alice.id, CodeKind::Login, at(0)).await;
        let bob_reset = add_code(store, &s, bob.id, CodeKind::Reset, at(0)).await;
        let reset2 = add_code(store, &s, alice.id, CodeKind::Reset, at(1000)).await;
        let confirm2 = add_code(store, &s, alice.id, CodeKind::Confirm, at(1000)).await;
        let now = at(2000);

        assert_eq!(store.redeem_reset_code(&s, &reset1.code_hash, now, "h").await.expect("redeem"), None);
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &confirm1.code_hash, now).await.expect("redeem"),
            None
        );
        assert_eq!(
            store.redeem_code(&s, CodeKind::Login, &login1.code_hash, now).await.expect("redeem"),
            Some(alice.id)
        );
        assert_eq!(
            store.redeem_reset_code(&s, &bob_reset.code_hash, now, "h").await.expect("redeem"),
            Some(bob.id)
        );
        // (The confirm code first: redeeming a reset code voids the user's other codes.)
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &confirm2.code_hash, now).await.expect("redeem"),
            Some(alice.id)
        );
        assert_eq!(
            store.redeem_reset_code(&s, &reset2.code_hash, now, "h").await.expect("redeem"),
            Some(alice.id)
        );
    }

    /// The kinds of codes, with a fresh code of each for `user_id` issued at `created`.
    async fn one_code_of_each_kind(
        store: &dyn Store,
        s: &Scope,
        user_id: Uuid,
        created: OffsetDateTime,
    ) -> Vec<CodeRecord> {
        let mut codes = Vec::new();
        for kind in [CodeKind::Reset, CodeKind::Confirm, CodeKind::Login] {
            codes.push(add_code(store, s, user_id, kind, created).await);
        }
        codes
    }

    /// Which of `codes` still have an owner at `now` (read without consuming them).
    async fn owned(store: &dyn Store, s: &Scope, codes: &[CodeRecord], now: OffsetDateTime) -> Vec<bool> {
        let mut out = Vec::new();
        for c in codes {
            out.push(store.code_owner(s, c.kind, &c.code_hash, now).await.expect("owner").is_some());
        }
        out
    }

    /// `set_password_hash` deletes every code of the user, of every kind, in its own
    /// transaction (a code issued before a password change must not set the password
    /// after it); other users' codes stay. A reset redemption (which sets a password) voids
    /// the user's other codes too. `rehash_password` is not a change of password: codes stay.
    pub async fn set_password_hash_voids_codes(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let mut rec = user(&s, Some("alice"), Some("alice@example.com"));
        rec.password_hash = Some("h1".into());
        store.insert_user(&rec).await.expect("insert");
        let alice = rec.user;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let now = at(2000);

        let alices = one_code_of_each_kind(store, &s, alice.id, at(0)).await;
        let bobs = one_code_of_each_kind(store, &s, bob.id, at(0)).await;
        assert!(store.rehash_password(&s, alice.id, "h1", "h2").await.expect("rehash"));
        assert_eq!(owned(store, &s, &alices, now).await, [true; 3], "a rehash voids nothing");

        assert!(store.set_password_hash(&s, alice.id, "h3", at(1000)).await.expect("set"));
        assert_eq!(owned(store, &s, &alices, now).await, [false; 3], "every kind is voided");
        assert_eq!(
            store.redeem_reset_code(&s, &alices[0].code_hash, now, "h4").await.expect("redeem"),
            None,
            "the reset code no longer sets a password"
        );
        assert_eq!(find_id(store, &s, alice.id).await.password_hash.as_deref(), Some("h3"));
        assert_eq!(owned(store, &s, &bobs, now).await, [true; 3], "another user's codes stay");

        // A reset redemption consumes its code and voids the user's other codes.
        let again = one_code_of_each_kind(store, &s, alice.id, at(1500)).await;
        assert_eq!(
            store.redeem_reset_code(&s, &again[0].code_hash, now, "h5").await.expect("redeem"),
            Some(alice.id)
        );
        assert_eq!(owned(store, &s, &again, now).await, [false; 3]);
        assert_eq!(owned(store, &s, &bobs, now).await, [true; 3]);
    }

    /// `update_user` that changes the email (its normalised key), sets one where there was
    /// none, or removes it, deletes every code of the user in the same transaction; other
    /// users' codes stay.
    pub async fn email_change_voids_codes(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
        let bob = add_user(store, &s, Some("bob"), Some("bob@example.com")).await;
        let now = at(5000);
        let bobs = one_code_of_each_kind(store, &s, bob.id, at(0)).await;
        let email = |e: &str| Some(Some(Email::parse(e).expect("email")));

        let codes = one_code_of_each_kind(store, &s, alice.id, at(0)).await;
        let patch = UserPatch { email: email("alice@elsewhere.example"), ..Default::default() };
        store.update_user(&s, alice.id, &patch, at(1000)).await.expect("update").expect("user");
        assert_eq!(owned(store, &s, &codes, now).await, [false; 3], "a new email voids every kind");
        assert_eq!(store.redeem_reset_code(&s, &codes[0].code_hash, now, "h").await.expect("redeem"), None);

        let codes = one_code_of_each_kind(store, &s, alice.id, at(1500)).await;
        let patch = UserPatch { email: Some(None), ..Default::default() };
        store.update_user(&s, alice.id, &patch, at(2000)).await.expect("update").expect("user");
        assert_eq!(owned(store, &s, &codes, now).await, [false; 3], "removing the email voids them");

        let codes = one_code_of_each_kind(store, &s, alice.id, at(2500)).await;
        let patch = UserPatch { email: email("alice@example.com"), ..Default::default() };
        store.update_user(&s, alice.id, &patch, at(3000)).await.expect("update").expect("user");
        assert_eq!(owned(store, &s, &codes, now).await, [false; 3], "adding an email voids them");

        assert_eq!(owned(store, &s, &bobs, now).await, [true; 3], "another user's codes stay");
    }

    /// An `update_user` that leaves the password and the email as they are (a new `extra`,
    /// group, username, confirmation state, activation, or the same email again, however
    /// its domain is cased) keeps the user's codes.
    pub async fn update_without_password_or_email_change_keeps_codes(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
        let codes = one_code_of_each_kind(store, &s, alice.id, at(0)).await;
        let patches = [
            UserPatch { extra: Some(obj(json!({"plan": "gold"}))), ..Default::default() },
            UserPatch { group: Some(Group::parse("staff").expect("group")), ..Default::default() },
            UserPatch { username: Some(Some(Username::parse("alicia").expect("u"))), ..Default::default() },
            UserPatch { confirmation: Some(Some(Confirmation::Pending)), ..Default::default() },
            UserPatch { active: Some(true), ..Default::default() },
            UserPatch {
                email: Some(Some(Email::parse("alice@EXAMPLE.com").expect("e"))),
                ..Default::default()
            },
        ];
        for (i, patch) in patches.iter().enumerate() {
            let t = at(1000 * (i as i64 + 1));
            store.update_user(&s, alice.id, patch, t).await.expect("update").expect("user");
            assert_eq!(owned(store, &s, &codes, at(10_000)).await, [true; 3], "{patch:?}");
        }
    }

    /// `request_code`: one counter per throttle key, counted the same whether the login
    /// names a user or nobody; a code is stored (voiding the user's older one of the kind)
    /// only for a user and only within the limit; other scopes see nothing.
    pub async fn request_code_counts_known_and_unknown_alike(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (s, other) = (scope("a"), scope("b"));
        let alice = add_user(store, &s, Some("alice"), Some("alice@example.com")).await;
        let older = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
        let request = |login: UserRef, key: &str, n: i64, limit: u32| CodeRequest {
            login,
            kind: CodeKind::Reset,
            code_hash: TokenHash::of(&format!("request-{key}-{n}")),
            created_at: at(n * SEC),
            expires_at: at(n * SEC + 60 * MIN),
            throttle_key: key.to_owned(),
            window: time::Duration::hours(1),
            limit,
        };
        let known = request(by_username("ALICE"), "code:reset:alice", 1, 2);
        let out = store.request_code(&s, &known).await.expect("request");
        assert_eq!((out.user_id, out.stored, out.requests.failures), (Some(alice.id), true, 1));
        assert_eq!(out.requests.expires_at, at(SEC + 60 * MIN));
        let now = at(2 * SEC);
        assert_eq!(
            store.code_owner(&s, CodeKind::Reset, &known.code_hash, now).await.expect("owner"),
            Some(alice.id)
        );
        assert_eq!(
            store.code_owner(&s, CodeKind::Reset, &older.code_hash, now).await.expect("owner"),
            None,
            "the new code voids the older one"
        );

        let unknown = request(by_username("nobody"), "code:reset:nobody", 2, 2);
        let out = store.request_code(&s, &unknown).await.expect("request");
        assert_eq!((out.user_id, out.stored, out.requests.failures), (None, false, 1));
        assert_eq!(
            store.code_owner(&s, CodeKind::Reset, &unknown.code_hash, now).await.expect("owner"),
            None
        );
        let out = store.request_code(&s, &request(by_username("nobody"), "code:reset:nobody", 3, 2)).await;
        assert_eq!(out.expect("request").requests.failures, 2, "unknown logins count too");

        // Second request for alice: within the limit. Third: counted, no code stored.
        let by_mail = request(by_email("alice@example.com"), "code:reset:alice", 4, 2);
        let out = store.request_code(&s, &by_mail).await.expect("request");
        assert_eq!((out.user_id, out.stored, out.requests.failures), (Some(alice.id), true, 2));
        let over = request(UserRef::Id(alice.id), "code:reset:alice", 5, 2);
        let out = store.request_code(&s, &over).await.expect("request");
        assert_eq!((out.user_id, out.stored, out.requests.failures), (Some(alice.id), false, 3));
        let now = at(6 * SEC);
        assert_eq!(store.code_owner(&s, CodeKind::Reset, &over.code_hash, now).await.expect("owner"), None);
        assert_eq!(
            store.code_owner(&s, CodeKind::Reset, &by_mail.code_hash, now).await.expect("owner"),
            Some(alice.id),
            "a refused request leaves the last code"
        );
        // No limit: stored however many came before.
        let unlimited = request(by_username("alice"), "code:reset:alice", 6, 0);
        let out = store.request_code(&s, &unlimited).await.expect("request");
        assert_eq!((out.stored, out.requests.failures), (true, 4));

        // Another scope: no user, its own counter.
        let out = store.request_code(&other, &request(by_username("alice"), "code:reset:alice", 7, 2)).await;
        let out = out.expect("request");
        assert_eq!((out.user_id, out.stored, out.requests.failures), (None, false, 1));
    }

    /// A `request_code` that stores no code (a login naming nobody, or a user over the
    /// limit) leaves nothing that can be owned or redeemed under the hash it was given, in
    /// any kind, and voids none of the user's codes, whatever the backend writes to take
    /// the same time (SQL backends keep an ownerless decoy row until it expires). The
    /// sweeper clears whatever is left once it has expired.
    pub async fn request_code_for_nobody_leaves_nothing_redeemable(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let older = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
        let request = |login: UserRef, kind: CodeKind, key: &str, n: i64, limit: u32| CodeRequest {
            login,
            kind,
            code_hash: TokenHash::of(&format!("nobody-{key}-{n}")),
            created_at: at(n * SEC),
            expires_at: at(n * SEC + 60 * MIN),
            throttle_key: key.to_owned(),
            window: time::Duration::hours(1),
            limit,
        };
        let now = at(10 * SEC);
        let mut refused = Vec::new();
        for (n, kind) in [(1, CodeKind::Reset), (2, CodeKind::Confirm), (3, CodeKind::Reset)] {
            let req = request(by_username("nobody"), kind, "code:nobody", n, 0);
            let out = store.request_code(&s, &req).await.expect("request");
            assert_eq!((out.user_id, out.stored), (None, false));
            refused.push(req.code_hash);
        }
        // Alice over her limit of 1: the first request is stored, the second is not.
        let first = request(UserRef::Id(alice.id), CodeKind::Reset, "code:alice", 4, 1);
        assert!(store.request_code(&s, &first).await.expect("request").stored);
        let over = request(UserRef::Id(alice.id), CodeKind::Reset, "code:alice", 5, 1);
        let out = store.request_code(&s, &over).await.expect("request");
        assert_eq!((out.user_id, out.stored), (Some(alice.id), false));
        refused.push(over.code_hash);

        for hash in &refused {
            for kind in [CodeKind::Reset, CodeKind::Confirm, CodeKind::Login] {
                assert_eq!(store.code_owner(&s, kind, hash, now).await.expect("owner"), None, "{kind:?}");
            }
            assert_eq!(store.redeem_reset_code(&s, hash, now, "h").await.expect("redeem"), None);
            for kind in [CodeKind::Confirm, CodeKind::Login] {
                assert_eq!(store.redeem_code(&s, kind, hash, now).await.expect("redeem"), None, "{kind:?}");
            }
        }
        assert_eq!(
            store.code_owner(&s, CodeKind::Reset, &older.code_hash, now).await.expect("owner"),
            None,
            "voided by alice's stored request"
        );
        assert_eq!(
            store.redeem_reset_code(&s, &first.code_hash, now, "h").await.expect("redeem"),
            Some(alice.id),
            "the refused request left alice's last code working"
        );

        // Past every expiry, the sweeper leaves nothing behind (how many rows it counts
        // depends on what the backend stored).
        let later = at(2 * HOUR);
        while store.sweep_expired(later, 100).await.expect("sweep") > 0 {}
        assert_eq!(store.sweep_expired(later, 100).await.expect("sweep"), 0);
        assert!(store.delete_user(&s, alice.id).await.expect("delete"), "decoys do not block deletion");
    }

    /// `code_owner`: the owner of a valid code of the asked kind, in the asked scope,
    /// before its expiry; reading it consumes nothing.
    pub async fn code_owner_reads_without_consuming(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (s, other) = (scope("a"), scope("b"));
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let reset = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
        let confirm = add_code(store, &s, bob.id, CodeKind::Confirm, at(0)).await;
        let s = &s;
        let owner =
            |kind, hash, now| async move { store.code_owner(s, kind, &hash, now).await.expect("code_owner") };

        assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(1000)).await, Some(alice.id));
        assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(1000)).await, Some(alice.id), "not consumed");
        assert_eq!(owner(CodeKind::Confirm, confirm.code_hash, at(1000)).await, Some(bob.id));
        assert_eq!(owner(CodeKind::Confirm, reset.code_hash, at(1000)).await, None, "another kind");
        assert_eq!(owner(CodeKind::Reset, random_hash(), at(1000)).await, None, "unknown");
        assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(HOUR)).await, None, "expired");
        assert_eq!(
            store.code_owner(&other, CodeKind::Reset, &reset.code_hash, at(1000)).await.expect("code_owner"),
            None,
            "another scope"
        );
        // Still redeemable once after all those reads.
        assert_eq!(
            store.redeem_reset_code(s, &reset.code_hash, at(1000), "h").await.expect("redeem"),
            Some(alice.id)
        );
        assert_eq!(owner(CodeKind::Reset, reset.code_hash, at(1000)).await, None, "redeemed");
    }

    /// `redeem_reset_code`: refused (changing nothing) at or after expiry, for another
    /// kind or an unknown hash; otherwise sets the hash, ends the user's sessions, consumes
    /// the code and returns the user's id, once.
    pub async fn redeem_reset_code_semantics(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let mut rec = user(&s, Some("alice"), None);
        rec.password_hash = Some("old".into());
        store.insert_user(&rec).await.expect("insert");
        let alice = rec.user;
        let a1 = login_at(store, &s, alice.id, at(10)).await;
        let a2 = login_at(store, &s, alice.id, at(20)).await;
        let reset = add_code(store, &s, alice.id, CodeKind::Reset, at(0)).await;
        let confirm = add_code(store, &s, alice.id, CodeKind::Confirm, at(0)).await;
        let hash = || async { find_id(store, &s, alice.id).await.password_hash };

        // At the expiry instant and after: refused, nothing changes.
        assert_eq!(store.redeem_reset_code(&s, &reset.code_hash, at(HOUR), "x").await.expect("redeem"), None);
        assert_eq!(
            store.redeem_reset_code(&s, &reset.code_hash, at(HOUR + 1), "x").await.expect("redeem"),
            None
        );
        assert_eq!(hash().await.as_deref(), Some("old"));
        assert!(has_session(store, &s, &a1).await);

        // Wrong kind either way, or unknown: refused, nothing consumed.
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &reset.code_hash, at(1000)).await.expect("redeem"),
            None
        );
        assert_eq!(
            store.redeem_code(&s, CodeKind::Reset, &confirm.code_hash, at(1000)).await.expect("redeem"),
            None
        );
        assert_eq!(
            store.redeem_reset_code(&s, &confirm.code_hash, at(1000), "x").await.expect("redeem"),
            None
        );
        assert_eq!(store.redeem_reset_code(&s, &random_hash(), at(1000), "x").await.expect("redeem"), None);
        assert_eq!(hash().await.as_deref(), Some("old"));
        // The confirm code was not touched by any of it.
        assert_eq!(
            store.code_owner(&s, CodeKind::Confirm, &confirm.code_hash, at(1000)).await.expect("owner"),
            Some(alice.id)
        );

        // Valid: the hash is set and every session ends.
        let got = store.redeem_reset_code(&s, &reset.code_hash, at(HOUR - 1), "new").await.expect("redeem");
        assert_eq!(got, Some(alice.id));
        assert_eq!(hash().await.as_deref(), Some("new"));
        assert!(!has_session(store, &s, &a1).await);
        assert!(!has_session(store, &s, &a2).await);

        // Single use.
        assert_eq!(
            store.redeem_reset_code(&s, &reset.code_hash, at(1000), "newer").await.expect("redeem"),
            None
        );
        assert_eq!(hash().await.as_deref(), Some("new"));
        // A new password voids the user's other codes (see `set_password_hash_voids_codes`).
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &confirm.code_hash, at(1000)).await.expect("redeem"),
            None
        );
    }

    /// Ten concurrent redemptions of one reset code (and of one confirm code): exactly one
    /// succeeds, and the stored hash is the winner's.
    pub async fn concurrent_redeem_is_single_use(store: Arc<dyn Store>) {
        let s = scope("a");
        let alice = add_user(store.as_ref(), &s, Some("alice"), None).await;
        let reset = add_code(store.as_ref(), &s, alice.id, CodeKind::Reset, at(0)).await;

        let mut tasks = Vec::new();
        for i in 0..10 {
            let (store, s, hash) = (store.clone(), s.clone(), reset.code_hash);
            tasks.push(tokio::spawn(async move {
                let got = store.redeem_reset_code(&s, &hash, at(1000), &format!("hash-{i}")).await;
                (i, got.expect("redeem_reset_code"))
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (i, got) = task.await.expect("task");
            if let Some(id) = got {
                assert_eq!(id, alice.id);
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "exactly one redemption wins");
        let stored = find_id(store.as_ref(), &s, alice.id).await.password_hash;
        assert_eq!(stored, Some(format!("hash-{}", winners[0])));

        // (Issued after the reset: a new password voids the codes issued before it.)
        let confirm = add_code(store.as_ref(), &s, alice.id, CodeKind::Confirm, at(500)).await;
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (store, s, hash) = (store.clone(), s.clone(), confirm.code_hash);
            tasks.push(tokio::spawn(async move {
                store.redeem_code(&s, CodeKind::Confirm, &hash, at(1000)).await.expect("redeem_code")
            }));
        }
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.expect("task").is_some());
        }
        assert_eq!(wins, 1, "exactly one confirmation wins");
    }

    /// `redeem_code`: a confirm code sets `confirmed = true` and clears `confirmation`; a
    /// login code only answers the user; both single-use; an expired one changes nothing.
    pub async fn redeem_confirm_and_login_codes(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let mut pending = user(&s, Some("alice"), Some("alice@example.com"));
        pending.user.confirmation = Some(Confirmation::Pending);
        store.insert_user(&pending).await.expect("insert");
        let alice = pending.user.clone();
        let mut bob = user(&s, Some("bob"), Some("bob@example.com"));
        bob.user.confirmation = Some(Confirmation::Pending);
        store.insert_user(&bob).await.expect("insert");
        let bob = bob.user;

        let confirm = add_code(store, &s, alice.id, CodeKind::Confirm, at(0)).await;
        let got =
            store.redeem_code(&s, CodeKind::Confirm, &confirm.code_hash, at(1000)).await.expect("redeem");
        assert_eq!(got, Some(alice.id));
        let u = find_id(store, &s, alice.id).await.user;
        assert!(u.confirmed);
        assert_eq!(u.confirmation, None);
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &confirm.code_hash, at(1000)).await.expect("redeem"),
            None
        );

        let expired = add_code(store, &s, bob.id, CodeKind::Confirm, at(0)).await;
        assert_eq!(
            store.redeem_code(&s, CodeKind::Confirm, &expired.code_hash, at(HOUR)).await.expect("redeem"),
            None
        );
        let u = find_id(store, &s, bob.id).await.user;
        assert!(!u.confirmed);
        assert_eq!(u.confirmation, Some(Confirmation::Pending));

        let login = add_code(store, &s, bob.id, CodeKind::Login, at(0)).await;
        assert_eq!(
            store.redeem_code(&s, CodeKind::Login, &login.code_hash, at(10)).await.expect("redeem"),
            Some(bob.id)
        );
        assert_eq!(
            store.redeem_code(&s, CodeKind::Login, &login.code_hash, at(10)).await.expect("redeem"),
            None
        );
        let u = find_id(store, &s, bob.id).await.user;
        assert!(!u.confirmed, "a login code confirms nothing");
        assert_eq!(u.confirmation, Some(Confirmation::Pending));
    }

    /// Provider links: stored and read back whole by (user, provider) and by (provider,
    /// client id); listed by provider; re-linking replaces the user's link to that
    /// provider; unlinking removes it once.
    pub async fn identities_link_find_and_unlink(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let mut gh = identity(&s, alice.id, "github", "gh-1");
        gh.access_token = Some("gho_token".into());
        gh.access_token_expiry = Some(at(HOUR));
        store.upsert_identity(&gh).await.expect("upsert");
        let (github, gitlab, google) = (provider("github"), provider("gitlab"), provider("google"));

        assert_eq!(store.get_identity(&s, alice.id, &github).await.expect("get"), Some(gh.clone()));
        assert_eq!(store.find_identity(&s, &github, "gh-1").await.expect("find"), Some(gh.clone()));
        assert!(store.find_identity(&s, &github, "gh-2").await.expect("find").is_none());
        assert!(store.find_identity(&s, &gitlab, "gh-1").await.expect("find").is_none());
        assert!(store.get_identity(&s, alice.id, &gitlab).await.expect("get").is_none());

        store.upsert_identity(&identity(&s, alice.id, "google", "g-1")).await.expect("upsert");
        store.upsert_identity(&identity(&s, alice.id, "gitlab", "gl-1")).await.expect("upsert");
        let listed = store.list_identities(&s, alice.id).await.expect("list");
        let providers: Vec<&str> = listed.iter().map(|i| i.provider.as_str()).collect();
        assert_eq!(providers, ["github", "gitlab", "google"]);
        assert_eq!(listed[0], gh);

        // Re-linking replaces the link (one per user and provider).
        let relinked = Identity {
            client_id: ClientId::parse("gh-2").expect("c"),
            access_token: None,
            access_token_expiry: None,
            updated_at: at(5000),
            ..gh.clone()
        };
        store.upsert_identity(&relinked).await.expect("upsert");
        assert_eq!(store.get_identity(&s, alice.id, &github).await.expect("get"), Some(relinked.clone()));
        assert!(store.find_identity(&s, &github, "gh-1").await.expect("find").is_none());
        assert_eq!(store.find_identity(&s, &github, "gh-2").await.expect("find"), Some(relinked));
        assert_eq!(store.list_identities(&s, alice.id).await.expect("list").len(), 3);

        // Updating the token of the same link.
        let updated = Identity {
            access_token: Some("new".into()),
            access_token_expiry: Some(at(2 * HOUR)),
            updated_at: at(6000),
            ..identity(&s, alice.id, "gitlab", "gl-1")
        };
        store.upsert_identity(&updated).await.expect("upsert");
        assert_eq!(store.find_identity(&s, &gitlab, "gl-1").await.expect("find"), Some(updated));

        assert!(store.delete_identity(&s, alice.id, &gitlab).await.expect("delete"));
        assert!(!store.delete_identity(&s, alice.id, &gitlab).await.expect("delete"));
        assert!(store.find_identity(&s, &gitlab, "gl-1").await.expect("find").is_none());
        let providers: Vec<String> = store
            .list_identities(&s, alice.id)
            .await
            .expect("list")
            .into_iter()
            .map(|i| i.provider.as_str().to_owned())
            .collect();
        assert_eq!(providers, ["github", "google"]);
        assert!(store.find_identity(&s, &google, "g-1").await.expect("find").is_some());
    }

    /// (provider, client id) belongs to one user of the scope: linking it to another user
    /// is `IdentityTaken` and stores nothing; the same client id at another provider is
    /// fine; once unlinked it is free.
    pub async fn identity_taken_by_another_user(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let github = provider("github");
        store.upsert_identity(&identity(&s, alice.id, "github", "same")).await.expect("upsert");

        assert_err(store.upsert_identity(&identity(&s, bob.id, "github", "same")).await, "IdentityTaken");
        assert!(store.get_identity(&s, bob.id, &github).await.expect("get").is_none());
        assert_eq!(
            store.find_identity(&s, &github, "same").await.expect("find").map(|i| i.user_id),
            Some(alice.id)
        );

        store.upsert_identity(&identity(&s, bob.id, "gitlab", "same")).await.expect("another provider");
        let mut again = identity(&s, alice.id, "github", "same");
        again.access_token = Some("t2".into());
        store.upsert_identity(&again).await.expect("re-linking one's own identity");

        assert!(store.delete_identity(&s, alice.id, &github).await.expect("delete"));
        store.upsert_identity(&identity(&s, bob.id, "github", "same")).await.expect("free again");
        assert_eq!(
            store.find_identity(&s, &github, "same").await.expect("find").map(|i| i.user_id),
            Some(bob.id)
        );
    }

    /// `list_events`: the user's events only, newest first, whole, `limit` at a time, each
    /// page before the last id of the previous one.
    pub async fn events_newest_first_with_cursor(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;

        let mut mine = Vec::new();
        let mut success = session(&s, alice.id, at(1000), at(HOUR), at(DAY));
        success.session.client =
            ClientInfo { ip: Some("198.51.100.1".into()), user_agent: Some("curl/8".into()) };
        let login = new_login(&success, None);
        store.insert_login(&login).await.expect("insert_login");
        mine.push(login.event);
        for (ms, outcome) in
            [(2000, Outcome::WrongPassword), (3000, Outcome::Inactive), (4000, Outcome::Throttled)]
        {
            let mut e = event(&s, Some(alice.id), at(ms), outcome);
            e.method = "provider:github".into();
            e.ip = Some("2001:db8::1".into());
            store.insert_event(&e).await.expect("insert_event");
            mine.push(e);
        }
        let last = login_at(store, &s, alice.id, at(5000)).await;
        let events_now = store.list_events(&s, alice.id, None, 100).await.expect("events");
        let last_event = events_now.first().cloned().expect("an event");
        assert_eq!(last_event.session_id, Some(last.session.id));
        assert_eq!(last_event.outcome, Outcome::Success);
        mine.push(last_event);
        store.insert_event(&event(&s, Some(bob.id), at(2500), Outcome::WrongPassword)).await.expect("event");
        store.insert_event(&event(&s, None, at(3500), Outcome::UnknownUser)).await.expect("event");

        let newest_first: Vec<LoginEvent> = mine.iter().rev().cloned().collect();
        assert_eq!(events_now, newest_first);

        let page = store.list_events(&s, alice.id, None, 2).await.expect("events");
        assert_eq!(page, newest_first[0..2]);
        let page = store.list_events(&s, alice.id, Some(page[1].id), 2).await.expect("events");
        assert_eq!(page, newest_first[2..4]);
        let page = store.list_events(&s, alice.id, Some(page[1].id), 2).await.expect("events");
        assert_eq!(page, newest_first[4..5]);
        assert!(store.list_events(&s, alice.id, Some(page[0].id), 2).await.expect("events").is_empty());

        let bobs = store.list_events(&s, bob.id, None, 10).await.expect("events");
        assert_eq!(bobs.len(), 1);
        assert_eq!(bobs[0].outcome, Outcome::WrongPassword);
    }

    fn nonzero(buckets: Vec<StatBucket>) -> Vec<(i64, u64, u64)> {
        let mut last = None;
        let mut out = Vec::new();
        for b in buckets {
            let start = hallpass_core::clock::to_unix_ms(b.start);
            assert!(last.is_none_or(|l| l < start), "buckets ascend");
            last = Some(start);
            if b.logins > 0 || b.users > 0 {
                out.push((start - T0_MS, b.logins, b.users));
            }
        }
        out
    }

    /// `login_stats` by hour: successful logins and distinct users per bucket, bucket
    /// starts are multiples of an hour since the epoch (also when `from` is not), `[from,
    /// to)` is half-open, failures and other scopes do not count.
    pub async fn login_stats_hour_buckets(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        let other = add_user(store, &scope("b"), Some("alice"), None).await;
        for (who, ms) in [
            (alice.id, 10 * MIN),
            (bob.id, 30 * MIN),
            (alice.id, 50 * MIN),
            (alice.id, 2 * HOUR),
            (bob.id, 3 * HOUR - 1),
            (alice.id, 3 * HOUR),
            (alice.id, -1),
        ] {
            login_at(store, &s, who, at(ms)).await;
        }
        login_at(store, &scope("b"), other.id, at(20 * MIN)).await;
        for outcome in [Outcome::WrongPassword, Outcome::Inactive, Outcome::Throttled] {
            store
                .insert_event(&event(&s, Some(alice.id), at(HOUR + 15 * MIN), outcome))
                .await
                .expect("event");
        }
        store.insert_event(&event(&s, None, at(HOUR + 16 * MIN), Outcome::UnknownUser)).await.expect("event");

        let got = store.login_stats(&s, at(0), at(3 * HOUR), Bucket::Hour).await.expect("stats");
        assert_eq!(nonzero(got), vec![(0, 3, 2), (2 * HOUR, 2, 2)]);

        // `from` inside an hour: the bucket still starts on the hour and counts from `from`.
        let got = store.login_stats(&s, at(20 * MIN), at(3 * HOUR + 1), Bucket::Hour).await.expect("stats");
        assert_eq!(nonzero(got), vec![(0, 2, 2), (2 * HOUR, 2, 2), (3 * HOUR, 1, 1)]);

        let got = store.login_stats(&s, at(-HOUR), at(0), Bucket::Hour).await.expect("stats");
        assert_eq!(nonzero(got), vec![(-HOUR, 1, 1)]);

        let got = store.login_stats(&scope("c"), at(-DAY), at(DAY), Bucket::Hour).await.expect("stats");
        assert_eq!(nonzero(got), vec![]);
    }

    /// `login_stats` by day (UTC days since the epoch), with two users.
    pub async fn login_stats_day_buckets(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let alice = add_user(store, &s, Some("alice"), None).await;
        let bob = add_user(store, &s, Some("bob"), None).await;
        for (who, ms) in [
            (alice.id, HOUR),
            (alice.id, 5 * HOUR),
            (bob.id, 12 * HOUR),
            (alice.id, DAY - 1),
            (bob.id, 2 * DAY),
            (bob.id, 2 * DAY + 23 * HOUR),
            (alice.id, 3 * DAY),
        ] {
            login_at(store, &s, who, at(ms)).await;
        }
        store
            .insert_event(&event(&s, Some(bob.id), at(DAY + HOUR), Outcome::WrongPassword))
            .await
            .expect("event");

        let got = store.login_stats(&s, at(0), at(3 * DAY), Bucket::Day).await.expect("stats");
        assert_eq!(nonzero(got), vec![(0, 4, 2), (2 * DAY, 2, 1)]);

        let got = store.login_stats(&s, at(12 * HOUR + 1), at(4 * DAY), Bucket::Day).await.expect("stats");
        assert_eq!(nonzero(got), vec![(0, 1, 1), (2 * DAY, 2, 1), (3 * DAY, 1, 1)]);
    }

    /// `sweep_expired` deletes, in every scope, up to `batch` sessions no longer valid and
    /// up to `batch` expired codes per call, counts them, and leaves valid ones working.
    pub async fn sweep_expired_respects_validity_and_batch(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let alice = add_user(store, &a, Some("alice"), None).await;
        let bob = add_user(store, &b, Some("bob"), None).await;
        let now = at(100_000);
        let mut sessions = Vec::new();
        for (sc, who, expires, absolute) in [
            (&a, alice.id, 100_000, 1_000_000), // idle expiry reached
            (&a, alice.id, 1_000_000, 50_000),  // absolute expiry passed
            (&b, bob.id, 90_000, 1_000_000),    // idle expiry passed, other scope
            (&a, alice.id, 100_001, 1_000_000), // valid
            (&b, bob.id, 200_000, 200_000),     // valid
        ] {
            let rec = session(sc, who, at(0), at(expires), at(absolute));
            store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
            sessions.push(rec);
        }
        let dead_reset = add_code(store, &a, alice.id, CodeKind::Reset, at(100_000 - HOUR)).await;
        let _dead_login = add_code(store, &a, alice.id, CodeKind::Login, at(-HOUR)).await;
        let _dead_b = add_code(store, &b, bob.id, CodeKind::Confirm, at(-2 * HOUR)).await;
        let valid = add_code(store, &a, alice.id, CodeKind::Confirm, at(100_001 - HOUR)).await;

        assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 4, "two sessions and two codes");
        assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 2, "the rest");
        assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 0);

        for rec in &sessions[0..3] {
            assert!(!has_session(store, &rec.session.scope, rec).await, "dead session swept");
        }
        for rec in &sessions[3..5] {
            assert!(has_session(store, &rec.session.scope, rec).await, "valid session kept");
        }
        assert_eq!(
            store.redeem_reset_code(&a, &dead_reset.code_hash, at(0), "h").await.expect("redeem"),
            None
        );
        assert_eq!(
            store.redeem_code(&a, CodeKind::Confirm, &valid.code_hash, now).await.expect("redeem"),
            Some(alice.id)
        );
    }

    /// `count_valid_sessions` counts, over every scope, the sessions before both their
    /// idle and absolute expiry at `now` (an expiry equal to `now` has passed).
    pub async fn count_valid_sessions_counts_every_scope_at_an_instant(store: Arc<dyn Store>) {
        let store = store.as_ref();
        assert_eq!(store.count_valid_sessions(at(0)).await.expect("count"), 0, "empty store");
        let (a, b) = (scope("a"), scope("b"));
        let alice = add_user(store, &a, Some("alice"), None).await;
        let bob = add_user(store, &b, Some("bob"), None).await;
        for (sc, who, expires, absolute) in [
            (&a, alice.id, 100_000, 1_000_000),
            (&a, alice.id, 1_000_000, 50_000),
            (&b, bob.id, 90_000, 1_000_000),
            (&a, alice.id, 100_001, 1_000_000),
            (&b, bob.id, 200_000, 200_000),
        ] {
            let rec = session(sc, who, at(0), at(expires), at(absolute));
            store.insert_login(&new_login(&rec, None)).await.expect("insert_login");
        }
        assert_eq!(store.count_valid_sessions(at(0)).await.expect("count"), 5);
        assert_eq!(
            store.count_valid_sessions(at(50_000)).await.expect("count"),
            4,
            "absolute expiry reached"
        );
        assert_eq!(store.count_valid_sessions(at(100_000)).await.expect("count"), 2);
        assert_eq!(store.count_valid_sessions(at(100_001)).await.expect("count"), 1);
        assert_eq!(store.count_valid_sessions(at(200_000)).await.expect("count"), 0);
        store.sweep_expired(at(100_000), 100).await.expect("sweep");
        assert_eq!(
            store.count_valid_sessions(at(100_000)).await.expect("count"),
            2,
            "sweeping changes nothing"
        );
    }

    /// API keys: found by hash while unrevoked, listed oldest first with revoked ones,
    /// revoked once.
    pub async fn api_keys_insert_find_list_revoke(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (h1, h2) = (random_hash(), random_hash());
        let k1 = ApiKey {
            id: id_at(at(0)),
            scope: scope("a"),
            name: Some("ci".into()),
            created_at: at(0),
            revoked_at: None,
        };
        let k2 = ApiKey {
            id: id_at(at(1000)),
            scope: scope("b"),
            name: None,
            created_at: at(1000),
            revoked_at: None,
        };
        store.insert_api_key(&k2, &h2).await.expect("insert");
        store.insert_api_key(&k1, &h1).await.expect("insert");

        assert_eq!(store.find_api_key(&h1).await.expect("find"), Some(k1.clone()));
        assert_eq!(store.find_api_key(&h2).await.expect("find"), Some(k2.clone()));
        assert_eq!(store.find_api_key(&random_hash()).await.expect("find"), None);
        assert_eq!(store.list_api_keys().await.expect("list"), vec![k1.clone(), k2.clone()]);

        assert!(store.revoke_api_key(k1.id, at(2000)).await.expect("revoke"));
        assert_eq!(store.find_api_key(&h1).await.expect("find"), None, "a revoked key is not found");
        let revoked = ApiKey { revoked_at: Some(at(2000)), ..k1.clone() };
        assert_eq!(store.list_api_keys().await.expect("list"), vec![revoked.clone(), k2.clone()]);
        assert!(!store.revoke_api_key(k1.id, at(3000)).await.expect("revoke"), "already revoked");
        assert_eq!(store.list_api_keys().await.expect("list")[0], revoked, "the first revocation stands");
        assert!(!store.revoke_api_key(Uuid::now_v7(), at(3000)).await.expect("revoke"));
        assert_eq!(store.find_api_key(&h2).await.expect("find"), Some(k2));
    }

    /// Nothing crosses scopes: every scoped operation in scope "b" neither sees nor touches
    /// scope "a"'s users, sessions, codes, identities or events, and "a" holds no claim on
    /// names in "b".
    pub async fn scope_isolation(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let mut rec = user(&a, Some("alice"), Some("alice@example.com"));
        rec.password_hash = Some("h".into());
        store.insert_user(&rec).await.expect("insert");
        let alice = rec.user.clone();
        let sess = login_at(store, &a, alice.id, at(0)).await;
        store.insert_event(&event(&a, Some(alice.id), at(10), Outcome::WrongPassword)).await.expect("event");
        let reset = add_code(store, &a, alice.id, CodeKind::Reset, at(0)).await;
        let confirm = add_code(store, &a, alice.id, CodeKind::Confirm, at(0)).await;
        store.upsert_identity(&identity(&a, alice.id, "github", "gh-1")).await.expect("identity");
        let github = provider("github");
        let now = at(1000);

        // Reads in b see nothing of a.
        assert!(find(store, &b, UserRef::Id(alice.id)).await.is_none());
        assert!(find(store, &b, by_username("alice")).await.is_none());
        assert!(find(store, &b, by_email("alice@example.com")).await.is_none());
        assert!(store.list_users(&b, &UserFilter::default(), None, 100).await.expect("list").is_empty());
        assert!(store.find_session(&b, &sess.token_hash).await.expect("find").is_none());
        assert!(store.list_sessions(&b, alice.id, now).await.expect("list").is_empty());
        assert!(store.get_identity(&b, alice.id, &github).await.expect("get").is_none());
        assert!(store.find_identity(&b, &github, "gh-1").await.expect("find").is_none());
        assert!(store.list_identities(&b, alice.id).await.expect("list").is_empty());
        assert!(store.list_events(&b, alice.id, None, 100).await.expect("events").is_empty());
        assert_eq!(
            nonzero(store.login_stats(&b, at(-DAY), at(DAY), Bucket::Hour).await.expect("stats")),
            vec![]
        );

        // Writes in b touch nothing of a.
        let off = UserPatch { active: Some(false), ..Default::default() };
        assert!(store.update_user(&b, alice.id, &off, now).await.expect("update").is_none());
        assert!(!store.delete_user(&b, alice.id).await.expect("delete"));
        assert!(!store.set_password_hash(&b, alice.id, "x", now).await.expect("set"));
        assert!(!store.rehash_password(&b, alice.id, "h", "x").await.expect("rehash"));
        assert!(store.freshen_session(&b, &sess.token_hash, now, at(DAY)).await.expect("freshen").is_none());
        assert!(
            store
                .patch_session_data(&b, &sess.token_hash, &json!({"x": 1}), NO_CAP)
                .await
                .expect("patch")
                .is_none()
        );
        assert!(store.delete_session_by_hash(&b, &sess.token_hash).await.expect("delete").is_none());
        assert!(!store.delete_session(&b, alice.id, sess.session.id).await.expect("delete"));
        assert_eq!(store.delete_sessions(&b, alice.id, None).await.expect("delete"), 0);
        assert_eq!(store.redeem_reset_code(&b, &reset.code_hash, now, "x").await.expect("redeem"), None);
        assert_eq!(
            store.redeem_code(&b, CodeKind::Confirm, &confirm.code_hash, now).await.expect("redeem"),
            None
        );
        assert!(!store.delete_identity(&b, alice.id, &github).await.expect("delete"));

        // b has its own names and identities.
        let alice_b = add_user(store, &b, Some("ALICE"), Some("alice@example.com")).await;
        store.upsert_identity(&identity(&b, alice_b.id, "github", "gh-1")).await.expect("same identity in b");
        let b_sess = login_at(store, &b, alice_b.id, at(100)).await;
        assert_eq!(find(store, &b, by_username("alice")).await.map(|r| r.user.id), Some(alice_b.id));
        assert_eq!(
            store.find_identity(&b, &github, "gh-1").await.expect("find").map(|i| i.user_id),
            Some(alice_b.id)
        );
        assert!(store.delete_user(&b, alice_b.id).await.expect("delete"));
        assert!(!has_session(store, &b, &b_sess).await);

        // a is whole.
        let found = find_id(store, &a, alice.id).await;
        assert_eq!(found.user, User { last_login_at: Some(at(0)), ..alice.clone() });
        assert_eq!(found.password_hash.as_deref(), Some("h"));
        let (session, _) =
            store.find_session(&a, &sess.token_hash).await.expect("find").expect("a's session");
        assert_eq!(session, sess.session);
        assert_eq!(find(store, &a, by_username("alice")).await.map(|r| r.user.id), Some(alice.id));
        assert_eq!(
            store.find_identity(&a, &github, "gh-1").await.expect("find").map(|i| i.user_id),
            Some(alice.id)
        );
        assert_eq!(store.list_events(&a, alice.id, None, 100).await.expect("events").len(), 2);
        assert_eq!(
            store.redeem_code(&a, CodeKind::Confirm, &confirm.code_hash, now).await.expect("redeem"),
            Some(alice.id)
        );
        assert_eq!(
            store.redeem_reset_code(&a, &reset.code_hash, now, "x").await.expect("redeem"),
            Some(alice.id)
        );
    }

    // ---- export and import

    /// Asserts that two exports hold the same users, field for field, links included.
    fn assert_same_export(got: &[store::ExportedUser], want: &[store::ExportedUser], what: &str) {
        let ids = |v: &[store::ExportedUser]| v.iter().map(|e| e.record.user.id).collect::<Vec<_>>();
        assert_eq!(ids(got), ids(want), "{what}: the users, in order");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.record.user, w.record.user, "{what}: user {}", w.record.user.id);
            assert_eq!(
                g.record.password_hash, w.record.password_hash,
                "{what}: hash of {}",
                w.record.user.id
            );
            assert_eq!(g.identities, w.identities, "{what}: links of {}", w.record.user.id);
        }
    }

    /// Every user of the store, exported `page` at a time; also checks each page's size.
    async fn export_all(store: &dyn Store, page: u32) -> Vec<store::ExportedUser> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let got = store.export_users(after.clone(), page).await.expect("export_users");
            assert!(got.len() <= page as usize, "a page holds at most `limit` users");
            let Some(last) = got.last() else { break };
            after = Some((last.record.user.scope.clone(), last.record.user.id));
            all.extend(got);
        }
        all
    }

    /// Stores `record` and links it to each `(provider, client id)`; returns it as an
    /// export shows it (links in provider order).
    async fn add_exported(
        store: &dyn Store,
        record: UserRecord,
        links: &[(&str, &str)],
        n: i64,
    ) -> store::ExportedUser {
        store.insert_user(&record).await.expect("insert_user");
        let mut identities = Vec::new();
        for (p, c) in links {
            let link = rich_identity(&record.user.scope, record.user.id, p, c, n);
            store.upsert_identity(&link).await.expect("upsert_identity");
            identities.push(link);
        }
        identities.sort_by(|a, b| a.provider.cmp(&b.provider));
        store::ExportedUser { record, identities }
    }

    /// `export_users` lists every scope's users in (scope, id) order — scopes by their
    /// bytes, so "a-b" < "a_c" < "ab" < "b" whatever the database's collation — `limit` at
    /// a time, strictly after the cursor (which may name a scope without users), each user
    /// whole: record, password hash and every link in provider order.
    pub async fn export_pages_in_scope_and_id_order(store: Arc<dyn Store>) {
        let store = store.as_ref();
        assert!(store.export_users(None, 10).await.expect("export").is_empty(), "nothing to export yet");
        let mut want = Vec::new();
        for (k, name) in ["b", "ab", "a_c", "a-b"].into_iter().enumerate() {
            let s = scope(name);
            for i in 0..3i64 {
                let n = k as i64 * 3 + i;
                let record = rich_user(&s, &format!("user{i}"), n);
                let (g, gh) = (format!("g-{n}"), format!("gh-{n}"));
                let links: Vec<(&str, &str)> = match i {
                    0 => vec![("google", &g), ("github", &gh)],
                    1 => vec![],
                    _ => vec![("github", &gh)],
                };
                want.push(add_exported(store, record, &links, n).await);
            }
        }
        // A user logging in or changing meanwhile shows as it is now.
        login_at(store, &scope("ab"), want[3].record.user.id, at(HOUR)).await;
        want[3].record.user.last_login_at = Some(at(HOUR));
        want.sort_by(|a, b| {
            let key = |e: &store::ExportedUser| (e.record.user.scope.as_str().to_owned(), e.record.user.id);
            key(a).cmp(&key(b))
        });
        let scopes: Vec<&str> = want.iter().map(|e| e.record.user.scope.as_str()).collect();
        assert_eq!(scopes[..4], ["a-b", "a-b", "a-b", "a_c"], "scopes in byte order");

        assert_same_export(&export_all(store, 5).await, &want, "pages of 5");
        assert_same_export(&export_all(store, 1).await, &want, "pages of 1");
        let whole = store.export_users(None, 1000).await.expect("export");
        assert_same_export(&whole, &want, "one page");
        let first = store.export_users(None, 5).await.expect("export");
        assert_same_export(&first, &want[..5], "the first page");
        let next = store.export_users(Some((scope("a_c"), want[4].record.user.id)), 5).await.expect("export");
        assert_same_export(&next, &want[5..10], "the second page crosses into the next scope");
        assert!(store.export_users(None, 0).await.expect("export").is_empty(), "limit 0");

        // Cursors naming a scope without users, or past a scope's last id.
        let after_aa = store.export_users(Some((scope("aa"), Uuid::nil())), 100).await.expect("export");
        assert_same_export(&after_aa, &want[6..], "after (aa, nil): ab and b");
        let after_ab = store.export_users(Some((scope("ab"), Uuid::max())), 100).await.expect("export");
        assert_same_export(&after_ab, &want[9..], "after (ab, max): b");
        let before_all = store.export_users(Some((scope("a"), Uuid::max())), 100).await.expect("export");
        assert_same_export(&before_all, &want, "after (a, max): everyone");
        let last = want.last().map(|e| (e.record.user.scope.clone(), e.record.user.id));
        assert!(store.export_users(last, 100).await.expect("export").is_empty(), "nothing after the last");
        assert!(store.export_users(Some((scope("c"), Uuid::nil())), 100).await.expect("export").is_empty());
    }

    /// What `export_users` gives, imported elsewhere (here: into a fresh scope, under new
    /// ids), reads back field for field — ids, every instant, the hash, group, extra,
    /// flags and links — and is found by username key, email key and provider link.
    pub async fn import_round_trip_keeps_every_field(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let a = scope("a");
        for n in 0..6i64 {
            let name = format!("Ünïcode{n}");
            let mut record = rich_user(&a, &name, n);
            if n == 4 {
                record.user.username = None;
            }
            if n == 5 {
                record.user.email = None;
            }
            let (g, gh) = (format!("g-{n}"), format!("gh-{n}"));
            let links: Vec<(&str, &str)> =
                if n % 2 == 0 { vec![("google", &g), ("github", &gh)] } else { vec![] };
            add_exported(store, record, &links, n).await;
        }
        let exported = export_all(store, 4).await;
        assert_eq!(exported.len(), 6);

        let c = scope("c");
        let batch: Vec<store::ExportedUser> = exported
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.record.user.scope = c.clone();
                e.record.user.id = Uuid::now_v7();
                for link in &mut e.identities {
                    link.scope = c.clone();
                    link.user_id = e.record.user.id;
                }
                e
            })
            .collect();
        let outcome = store.import_users(&batch).await.expect("import_users");
        assert_eq!(outcome, store::ImportOutcome { inserted: 6, existing: 0, conflicts: vec![] });

        for e in &batch {
            let u = &e.record.user;
            let found = find_id(store, &c, u.id).await;
            assert_eq!(found.user, *u, "the user reads back field for field");
            assert_eq!(found.password_hash, e.record.password_hash, "the hash is kept");
            assert_eq!(
                store.list_identities(&c, u.id).await.expect("list"),
                e.identities,
                "the links are kept"
            );
            if let Some(name) = &u.username {
                let by = UserRef::Username(Username::key_of(&name.as_str().to_uppercase()));
                assert_eq!(find(store, &c, by).await.map(|r| r.user.id), Some(u.id), "found by username");
            }
            if let Some((local, _)) = u.email.as_ref().and_then(|e| e.as_str().split_once('@')) {
                let by = UserRef::Email(Email::key_of(&format!("{local}@EXAMPLE.com")));
                assert_eq!(find(store, &c, by).await.map(|r| r.user.id), Some(u.id), "found by email");
            }
            for link in &e.identities {
                let got =
                    store.find_identity(&c, &link.provider, link.client_id.as_str()).await.expect("find");
                assert_eq!(got.as_ref(), Some(link), "found by provider link");
            }
        }
        let mut by_id = batch.clone();
        by_id.sort_by_key(|e| e.record.user.id);
        let back = store.export_users(Some((scope("b"), Uuid::max())), 100).await.expect("export");
        assert_same_export(&back, &by_id, "the imported scope exports what was imported");
        assert_same_export(&export_all(store, 100).await[..6], &exported, "the source scope is untouched");
    }

    /// Importing a batch again inserts nothing, counts every user as existing, and leaves
    /// every user exactly as it is now (changes made since the first import stay); a batch
    /// naming one id twice inserts it once.
    pub async fn import_again_changes_nothing(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let s = scope("a");
        let batch: Vec<store::ExportedUser> = (0..3i64)
            .map(|n| {
                let record = rich_user(&s, &format!("again{n}"), n);
                let id = record.user.id;
                let identities = vec![
                    rich_identity(&s, id, "github", &format!("gh-{n}"), n),
                    rich_identity(&s, id, "google", &format!("g-{n}"), n),
                ];
                store::ExportedUser { record, identities }
            })
            .collect();
        let first = store.import_users(&batch).await.expect("import_users");
        assert_eq!(first, store::ImportOutcome { inserted: 3, existing: 0, conflicts: vec![] });
        assert_same_export(&export_all(store, 10).await, &batch, "the first import");

        let (u0, u1, u2) = (batch[0].record.user.id, batch[1].record.user.id, batch[2].record.user.id);
        let patch = UserPatch { group: Some(Group::parse("changed").expect("g")), ..Default::default() };
        store.update_user(&s, u0, &patch, at(DAY)).await.expect("update").expect("u0");
        assert!(store.delete_identity(&s, u1, &provider("github")).await.expect("unlink"));
        assert!(store.set_password_hash(&s, u2, "new-hash", at(DAY)).await.expect("set"));
        let before = export_all(store, 10).await;

        let again = store.import_users(&batch).await.expect("import_users");
        assert_eq!(again, store::ImportOutcome { inserted: 0, existing: 3, conflicts: vec![] });
        assert_same_export(&export_all(store, 10).await, &before, "a second import changes nothing");
        assert_eq!(find_id(store, &s, u0).await.user.updated_at, at(DAY));

        let twin = rich_user(&s, "twin", 7);
        let pair = [
            store::ExportedUser { record: twin.clone(), identities: vec![] },
            store::ExportedUser { record: twin.clone(), identities: vec![] },
        ];
        let outcome = store.import_users(&pair).await.expect("import_users");
        assert_eq!(outcome, store::ImportOutcome { inserted: 1, existing: 1, conflicts: vec![] });
        assert_eq!(find_id(store, &s, twin.user.id).await.user, twin.user);
        let empty = store.import_users(&[]).await.expect("import_users");
        assert_eq!(empty, store::ImportOutcome::default());
    }

    /// A user whose username, email or provider link another user of the scope holds — in
    /// the store or earlier in the batch — is reported and not inserted (username checked
    /// first, then email, then links); a refused user holds nothing; another scope's
    /// names are free; everyone else is inserted, and the holders are untouched.
    pub async fn import_reports_conflicts_and_inserts_the_rest(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let holder = user(&a, Some("Taken"), Some("taken@example.com"));
        store.insert_user(&holder).await.expect("insert_user");
        store.upsert_identity(&identity(&a, holder.user.id, "github", "gh-taken")).await.expect("link");

        let entry = |s: &Scope, username: Option<&str>, email: Option<&str>, links: &[(&str, &str)]| {
            let record = user(s, username, email);
            let identities = links.iter().map(|(p, c)| identity(s, record.user.id, p, c)).collect();
            store::ExportedUser { record, identities }
        };
        let mut existing = entry(&a, Some("someone-else"), None, &[]);
        existing.record.user.id = holder.user.id;
        let batch = vec![
            entry(&a, Some("first"), Some("first@example.com"), &[("google", "g-1")]), // 0 inserted
            entry(&a, Some("TAKEN"), Some("x1@example.com"), &[]),                     // 1 username
            entry(&a, Some("x2"), Some("taken@EXAMPLE.COM"), &[]),                     // 2 email
            entry(&a, Some("x3"), None, &[("github", "gh-taken")]),                    // 3 link
            entry(&a, Some("dup"), Some("dup-a@example.com"), &[]),                    // 4 inserted
            entry(&a, Some("DUP"), Some("dup-b@example.com"), &[]),                    // 5 username (batch)
            entry(&a, Some("x6"), Some("dup-a@Example.com"), &[]),                     // 6 email (batch)
            entry(&a, None, Some("x7@example.com"), &[("google", "g-1")]),             // 7 link (batch)
            entry(&a, Some("taken"), Some("taken@example.com"), &[]),                  // 8 username first
            entry(&a, Some("x2"), Some("x1@example.com"), &[("gitlab", "gh-taken")]),  // 9 inserted
            entry(&b, Some("taken"), Some("taken@example.com"), &[("github", "gh-taken")]), // 10 inserted
            existing,                                                                  // 11 existing
        ];
        let outcome = store.import_users(&batch).await.expect("import_users");
        let id = |i: usize| batch[i].record.user.id;
        use store::ImportConflict::{Email as E, Identity as I, Username as U};
        assert_eq!(
            outcome,
            store::ImportOutcome {
                inserted: 4,
                existing: 1,
                conflicts: vec![
                    (id(1), U),
                    (id(2), E),
                    (id(3), I),
                    (id(5), U),
                    (id(6), E),
                    (id(7), I),
                    (id(8), U)
                ],
            }
        );
        for i in [0, 4, 9, 10] {
            let s = &batch[i].record.user.scope;
            assert_eq!(find_id(store, s, id(i)).await.user, batch[i].record.user, "user {i} inserted");
        }
        for i in [1, 2, 3, 5, 6, 7, 8] {
            assert!(find(store, &a, UserRef::Id(id(i))).await.is_none(), "user {i} refused");
        }
        assert_eq!(find_id(store, &a, holder.user.id).await.user, holder.user, "the holder is untouched");
        let github = provider("github");
        let holder_of = |s: Scope, p: ProviderName, c: &'static str| async move {
            store.find_identity(&s, &p, c).await.expect("find").map(|i| i.user_id)
        };
        assert_eq!(holder_of(a.clone(), github.clone(), "gh-taken").await, Some(holder.user.id));
        assert_eq!(holder_of(b.clone(), github.clone(), "gh-taken").await, Some(id(10)));
        assert_eq!(holder_of(a.clone(), provider("gitlab"), "gh-taken").await, Some(id(9)));
        assert_eq!(holder_of(a.clone(), provider("google"), "g-1").await, Some(id(0)));
        assert_eq!(find(store, &a, by_username("Dup")).await.map(|r| r.user.id), Some(id(4)));
        assert_eq!(find(store, &a, by_email("x1@example.com")).await.map(|r| r.user.id), Some(id(9)));
        assert_eq!(find(store, &b, by_username("TAKEN")).await.map(|r| r.user.id), Some(id(10)));
        assert_eq!(list_all(store, &a, UserFilter::default()).await.len(), 4, "holder and three imported");
    }
    // ---- throttling counters

    /// Hits count while the counter lives; after `expires_at` a hit starts it again.
    pub async fn throttle_hits_count_and_expire(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let a = scope("a");
        let window = time::Duration::minutes(15);
        assert_eq!(store.throttle_get(&a, "acct:x", at(0)).await.expect("get"), None);
        let first = store.throttle_hit(&a, "acct:x", at(0), window).await.expect("hit");
        assert_eq!(
            first,
            ThrottleState { failures: 1, first_at: at(0), last_at: at(0), expires_at: at(15 * MIN) }
        );
        let second = store.throttle_hit(&a, "acct:x", at(SEC), window).await.expect("hit");
        assert_eq!(
            second,
            ThrottleState { failures: 2, first_at: at(0), last_at: at(SEC), expires_at: at(15 * MIN) }
        );
        // A later hit with another window keeps the counter's own expiry.
        let third =
            store.throttle_hit(&a, "acct:x", at(2 * SEC), time::Duration::hours(5)).await.expect("hit");
        assert_eq!((third.failures, third.expires_at), (3, at(15 * MIN)));
        assert_eq!(store.throttle_get(&a, "acct:x", at(2 * SEC)).await.expect("get"), Some(third));
        assert_eq!(store.throttle_get(&a, "acct:x", at(15 * MIN - 1)).await.expect("get"), Some(third));
        assert_eq!(store.throttle_get(&a, "acct:x", at(15 * MIN)).await.expect("get"), None, "expired");
        let again = store.throttle_hit(&a, "acct:x", at(15 * MIN), window).await.expect("hit");
        assert_eq!(
            again,
            ThrottleState {
                failures: 1,
                first_at: at(15 * MIN),
                last_at: at(15 * MIN),
                expires_at: at(30 * MIN)
            }
        );
    }

    /// 20 concurrent hits on one counter count exactly 20.
    pub async fn throttle_concurrent_hits_all_count(store: Arc<dyn Store>) {
        let a = scope("a");
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (store, a) = (store.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                store.throttle_hit(&a, "ip:10.0.0.1", at(i * 10), time::Duration::hours(1)).await
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.expect("task").expect("hit").failures);
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=20).collect::<Vec<u32>>(), "each hit saw its own count");
        let state = store.throttle_get(&a, "ip:10.0.0.1", at(300)).await.expect("get").expect("live");
        assert_eq!(state.failures, 20);
    }

    /// `throttle_get_many` answers what `throttle_get` would for each key, in the order
    /// asked: `None` for a missing or expired counter, never another scope's.
    pub async fn throttle_get_many_reads_in_order(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let hour = time::Duration::hours(1);
        store.throttle_hit(&a, "acct:x", at(0), hour).await.expect("hit");
        let acct = store.throttle_hit(&a, "acct:x", at(SEC), hour).await.expect("hit");
        let ip =
            store.throttle_hit(&a, "ip:10.0.0.1", at(0), time::Duration::seconds(10)).await.expect("hit");
        store.throttle_hit(&b, "ip:10.0.0.2", at(0), hour).await.expect("hit");
        let a = &a;
        let get = |keys: &'static [&'static str], now| async move {
            store.throttle_get_many(a, keys, now).await.expect("get_many")
        };
        assert_eq!(get(&["acct:x", "ip:10.0.0.1"], at(2 * SEC)).await, vec![Some(acct), Some(ip)]);
        assert_eq!(get(&["ip:10.0.0.1", "acct:x"], at(2 * SEC)).await, vec![Some(ip), Some(acct)]);
        assert_eq!(get(&["acct:x", "ip:10.0.0.1"], at(10 * SEC)).await, vec![Some(acct), None], "expired");
        assert_eq!(get(&["acct:y", "ip:10.0.0.2"], at(2 * SEC)).await, vec![None, None], "other scope");
        assert_eq!(get(&["acct:x"], at(2 * SEC)).await, vec![Some(acct)]);
        assert_eq!(get(&[], at(2 * SEC)).await, vec![]);
        for (key, want) in [("acct:x", Some(acct)), ("ip:10.0.0.1", Some(ip)), ("acct:y", None)] {
            assert_eq!(store.throttle_get(a, key, at(2 * SEC)).await.expect("get"), want);
        }
    }

    /// Clearing forgets one counter; keys and scopes do not share counters.
    pub async fn throttle_clear_and_isolation(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let w = time::Duration::hours(1);
        for _ in 0..3 {
            store.throttle_hit(&a, "acct:x", at(0), w).await.expect("hit");
        }
        store.throttle_hit(&a, "acct:y", at(0), w).await.expect("hit");
        store.throttle_hit(&b, "acct:x", at(0), w).await.expect("hit");
        let failures = |sc: Scope, key: &'static str| async move {
            store.throttle_get(&sc, key, at(1)).await.expect("get").map(|s| s.failures)
        };
        assert_eq!(failures(a.clone(), "acct:x").await, Some(3));
        assert_eq!(failures(a.clone(), "acct:y").await, Some(1));
        assert_eq!(failures(b.clone(), "acct:x").await, Some(1));
        assert_eq!(failures(a.clone(), "ip:acct:x").await, None);
        store.throttle_clear(&a, "acct:x").await.expect("clear");
        store.throttle_clear(&a, "acct:never").await.expect("clearing nothing is fine");
        assert_eq!(failures(a.clone(), "acct:x").await, None);
        assert_eq!(failures(a.clone(), "acct:y").await, Some(1));
        assert_eq!(failures(b.clone(), "acct:x").await, Some(1), "other scope untouched");
        let restart = store.throttle_hit(&a, "acct:x", at(2), w).await.expect("hit");
        assert_eq!(restart.failures, 1);
    }

    /// `throttle_update` clears, then gives one count back (a counter of one, or an
    /// expired one, goes), then hits, in one call, answering the hits' states in order;
    /// other scopes and keys are untouched.
    pub async fn throttle_update_hits_undoes_and_clears(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let (hour, minute) = (time::Duration::hours(1), time::Duration::minutes(1));
        async fn update(
            store: &dyn Store,
            a: &Scope,
            hit: &[(&str, time::Duration)],
            undo: &[&str],
            clear: &[&str],
            now: OffsetDateTime,
        ) -> Vec<ThrottleState> {
            store.throttle_update(a, &ThrottleUpdate { hit, undo, clear }, now).await.expect("update")
        }
        let failures = |sc: Scope, key: &'static str, now| async move {
            store.throttle_get(&sc, key, now).await.expect("get").map(|s| s.failures)
        };
        store.throttle_hit(&b, "acct:x", at(0), hour).await.expect("hit");

        let first = update(store, &a, &[("acct:x", hour), ("ip:1", minute)], &[], &[], at(0)).await;
        assert_eq!(
            first,
            vec![
                ThrottleState { failures: 1, first_at: at(0), last_at: at(0), expires_at: at(60 * MIN) },
                ThrottleState { failures: 1, first_at: at(0), last_at: at(0), expires_at: at(MIN) },
            ]
        );
        let second = update(store, &a, &[("ip:1", minute), ("acct:x", hour)], &[], &[], at(SEC)).await;
        assert_eq!(second.iter().map(|s| (s.failures, s.last_at)).collect::<Vec<_>>(), vec![(2, at(SEC)); 2]);
        assert_eq!(second[0].expires_at, at(MIN), "in the order asked");

        // An undo gives one back; at one, the counter goes.
        assert_eq!(update(store, &a, &[], &["acct:x"], &[], at(2 * SEC)).await, vec![]);
        assert_eq!(failures(a.clone(), "acct:x", at(2 * SEC)).await, Some(1));
        update(store, &a, &[], &["acct:x", "acct:never"], &[], at(2 * SEC)).await;
        assert_eq!(failures(a.clone(), "acct:x", at(2 * SEC)).await, None);
        let restarted = update(store, &a, &[("acct:x", hour)], &[], &[], at(3 * SEC)).await;
        assert_eq!((restarted[0].failures, restarted[0].first_at), (1, at(3 * SEC)), "starts again");

        // An expired counter is removed by an undo whatever its count.
        update(store, &a, &[("ip:1", minute)], &[], &[], at(4 * SEC)).await;
        assert_eq!(failures(a.clone(), "ip:1", at(4 * SEC)).await, Some(3));
        update(store, &a, &[], &["ip:1"], &[], at(MIN)).await;
        let after = update(store, &a, &[("ip:1", minute)], &[], &[], at(MIN)).await;
        assert_eq!((after[0].failures, after[0].first_at), (1, at(MIN)));

        // All three kinds at once.
        update(store, &a, &[("ip:2", hour)], &[], &[], at(MIN)).await;
        update(store, &a, &[("ip:2", hour)], &[], &[], at(MIN)).await;
        let mixed = update(store, &a, &[("known:d", hour)], &["ip:2"], &["acct:x"], at(MIN + SEC)).await;
        assert_eq!(mixed.len(), 1);
        assert_eq!(mixed[0].failures, 1);
        assert_eq!(failures(a.clone(), "acct:x", at(MIN + SEC)).await, None, "cleared");
        assert_eq!(failures(a.clone(), "ip:2", at(MIN + SEC)).await, Some(1), "one given back");
        assert_eq!(failures(a.clone(), "known:d", at(MIN + SEC)).await, Some(1));
        assert_eq!(failures(b.clone(), "acct:x", at(MIN + SEC)).await, Some(1), "other scope untouched");
        update(store, &a, &[], &[], &["acct:never"], at(MIN)).await;
    }

    /// 50 concurrent reservations of two counters each see a count no other saw (so a
    /// budget of k lets at most k through), and 50 concurrent undos give every one back.
    pub async fn throttle_update_reservations_count_under_concurrency(store: Arc<dyn Store>) {
        let a = scope("a");
        let hour = time::Duration::hours(1);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (store, a) = (store.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                let hit: &[(&str, time::Duration)] = &[("acct:burst", hour), ("ip:10.9.9.9", hour)];
                store.throttle_update(&a, &ThrottleUpdate { hit, ..Default::default() }, at(i)).await
            }));
        }
        let (mut accounts, mut ips) = (Vec::new(), Vec::new());
        for t in tasks {
            let states = t.await.expect("task").expect("update");
            accounts.push(states[0].failures);
            ips.push(states[1].failures);
        }
        accounts.sort_unstable();
        ips.sort_unstable();
        assert_eq!(accounts, (1..=50).collect::<Vec<u32>>(), "each reservation saw its own count");
        assert_eq!(ips, (1..=50).collect::<Vec<u32>>());
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (store, a) = (store.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                let undo: &[&str] = &["acct:burst", "ip:10.9.9.9"];
                store.throttle_update(&a, &ThrottleUpdate { undo, ..Default::default() }, at(60)).await
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("undo");
        }
        for key in ["acct:burst", "ip:10.9.9.9"] {
            assert_eq!(
                store.throttle_get(&a, key, at(61)).await.expect("get"),
                None,
                "{key}: all given back"
            );
        }
    }

    /// The sweep removes expired counters (within its batch) and keeps live ones.
    pub async fn throttle_sweep_removes_expired(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let short = time::Duration::minutes(1);
        store.throttle_hit(&a, "ip:1", at(0), short).await.expect("hit");
        store.throttle_hit(&a, "ip:2", at(0), short).await.expect("hit");
        store.throttle_hit(&b, "ip:1", at(0), short).await.expect("hit");
        store.throttle_hit(&a, "ip:3", at(0), time::Duration::hours(1)).await.expect("hit");
        let now = at(MIN);
        assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 2);
        assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 1);
        assert_eq!(store.sweep_expired(now, 2).await.expect("sweep"), 0);
        assert!(store.throttle_get(&a, "ip:3", now).await.expect("get").is_some(), "live counter kept");
        // A swept counter starts again from one.
        assert_eq!(store.throttle_hit(&a, "ip:1", now, short).await.expect("hit").failures, 1);
    }

    /// Users, sessions and events of the internal admin scope (`_admin`, which
    /// `Scope::parse` refuses) are stored and read back like any scope's, and stay apart
    /// from a scope of users with the same names.
    pub async fn admin_scope_round_trips(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let admin = Scope::admin();
        let root = add_user(store, &admin, Some("root"), None).await;
        let other = add_user(store, &scope("a"), Some("root"), None).await;
        let found = store.find_user(&admin, &UserRef::parse("root").expect("ref")).await;
        let found = found.expect("find").expect("found");
        assert_eq!(found.user, root);
        assert!(found.user.scope.is_admin());
        let session = login_at(store, &admin, root.id, at(0)).await;
        let (s, u) = store.find_session(&admin, &session.token_hash).await.expect("find").expect("found");
        assert_eq!((s.scope.clone(), u.id), (admin.clone(), root.id));
        assert!(store.find_session(&scope("a"), &session.token_hash).await.expect("find").is_none());
        let events = store.list_events(&admin, root.id, None, 10).await.expect("events");
        assert_eq!(events.len(), 1);
        assert!(events[0].scope.is_admin());
        assert!(store.list_events(&scope("a"), other.id, None, 10).await.expect("events").is_empty());
    }

    fn audit_entry(t: OffsetDateTime, action: &str, scope: Option<Scope>) -> AuditEntry {
        AuditEntry {
            id: id_at(t),
            at: t,
            admin: "root".into(),
            action: action.into(),
            scope,
            target: Some("target-1".into()),
            detail: obj(json!({"fields": ["active"], "n": 2})),
        }
    }

    /// `list_audit` gives entries newest first, every field as written, paged by id.
    pub async fn audit_newest_first_with_cursor(store: Arc<dyn Store>) {
        let store = store.as_ref();
        assert!(store.list_audit(None, 10).await.expect("list").is_empty());
        let entries: Vec<AuditEntry> = (0..5)
            .map(|i| audit_entry(at(i * SEC), &format!("action_{i}"), (i % 2 == 0).then(|| scope("a"))))
            .collect();
        for e in &entries {
            store.insert_audit(e).await.expect("insert");
        }
        let mut no_target = audit_entry(at(10 * SEC), "admin_login", None);
        no_target.target = None;
        no_target.detail = JsonObject::new();
        store.insert_audit(&no_target).await.expect("insert");
        let first = store.list_audit(None, 3).await.expect("list");
        assert_eq!(first, vec![no_target.clone(), entries[4].clone(), entries[3].clone()]);
        let next = store.list_audit(Some(entries[3].id), 10).await.expect("list");
        assert_eq!(next, vec![entries[2].clone(), entries[1].clone(), entries[0].clone()]);
        assert!(store.list_audit(Some(entries[0].id), 10).await.expect("list").is_empty());
    }

    /// `scope_figures` counts, per scope with a user or a key: users, active users,
    /// sessions valid at `now`, unrevoked keys.
    pub async fn scope_figures_count_per_scope(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b, k) = (scope("a"), scope("b"), scope("keys-only"));
        let alice = add_user(store, &a, Some("alice"), None).await;
        let bob = add_user(store, &a, Some("bob"), None).await;
        let carol = add_user(store, &a, Some("carol"), None).await;
        let dave = add_user(store, &b, Some("dave"), None).await;
        let patch = UserPatch { active: Some(false), ..UserPatch::default() };
        store.update_user(&a, carol.id, &patch, at(0)).await.expect("update").expect("user");
        let now = at(10 * MIN);
        login_at(store, &a, alice.id, at(0)).await; // valid until 1 h
        login_at(store, &a, bob.id, at(0)).await;
        login_at(store, &a, bob.id, at(-2 * HOUR)).await; // idle-expired at `now`
        login_at(store, &b, dave.id, at(0)).await;
        let key = |sc: &Scope| ApiKey {
            id: Uuid::now_v7(),
            scope: sc.clone(),
            name: None,
            created_at: at(0),
            revoked_at: None,
        };
        store.insert_api_key(&key(&a), &random_hash()).await.expect("key");
        let revoked = key(&k);
        store.insert_api_key(&revoked, &random_hash()).await.expect("key");
        assert!(store.revoke_api_key(revoked.id, at(0)).await.expect("revoke"));
        let mut got = store.scope_figures(now).await.expect("figures");
        got.sort_by(|x, y| x.scope.cmp(&y.scope));
        let row = |scope: &Scope, users, active_users, live_sessions, api_keys| ScopeFigures {
            scope: scope.clone(),
            users,
            active_users,
            live_sessions,
            api_keys,
        };
        assert_eq!(got, vec![row(&a, 3, 2, 2, 1), row(&b, 1, 1, 1, 0), row(&k, 0, 0, 0, 0)]);
    }

    /// `outcome_stats` counts attempts of every outcome per bucket, in `[from, to)`, of
    /// the scope only.
    pub async fn outcome_stats_count_every_outcome(store: Arc<dyn Store>) {
        let store = store.as_ref();
        let (a, b) = (scope("a"), scope("b"));
        let alice = add_user(store, &a, Some("alice"), None).await;
        login_at(store, &a, alice.id, at(HOUR)).await;
        login_at(store, &a, alice.id, at(2 * HOUR)).await;
        for (t, outcome) in [
            (at(3 * HOUR), Outcome::WrongPassword),
            (at(4 * HOUR), Outcome::WrongPassword),
            (at(5 * HOUR), Outcome::UnknownUser),
            (at(DAY + HOUR), Outcome::Throttled),
            (at(DAY + 2 * HOUR), Outcome::Inactive),
            (at(-1), Outcome::WrongPassword),
            (at(2 * DAY), Outcome::WrongPassword),
        ] {
            store.insert_event(&event(&a, Some(alice.id), t, outcome)).await.expect("event");
        }
        store.insert_event(&event(&b, None, at(HOUR), Outcome::UnknownUser)).await.expect("event");
        let mut got: Vec<(i64, &str, u64)> = store
            .outcome_stats(&a, at(0), at(2 * DAY), Bucket::Day)
            .await
            .expect("stats")
            .into_iter()
            .map(|c| (hallpass_core::clock::to_unix_ms(c.start) - T0_MS, c.outcome.as_str(), c.count))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (0, "success", 2),
                (0, "unknown_user", 1),
                (0, "wrong_password", 2),
                (DAY, "inactive", 1),
                (DAY, "throttled", 1),
            ]
        );
        let none = store.outcome_stats(&scope("c"), at(0), at(2 * DAY), Bucket::Day).await.expect("stats");
        assert!(none.is_empty());
    }
}

/// A measurement, not a conformance case: how fast a backend imports and exports users.
/// Each backend runs it from an `#[ignore]`d test (timing belongs in measurements, not in
/// the suite), e.g. `cargo test -p hallpass-sqlite --test import_speed -- --ignored --nocapture`.
pub mod speed {
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
                ExportedUser { record, identities: vec![link] }
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
}
