//! Builders of records for the cases (usable by a backend's own tests too).

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
    let ts =
        Timestamp::from_unix(NoContext, ms.div_euclid(1000) as u64, (ms.rem_euclid(1000) * 1_000_000) as u32);
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
pub async fn add_user(store: &dyn Store, scope: &Scope, username: Option<&str>, email: Option<&str>) -> User {
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
            amr: vec!["pwd".into(), "otp".into()],
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
    NewLogin { session: record.clone(), event, max_sessions, notice: None, webhooks: Vec::new() }
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
    r.user.extra = obj(serde_json::json!({"n": n, "name": username, "nested": {"ü": [1, 2.5, null, true]}}));
    r.user.active = n % 3 != 1;
    r.user.confirmation = [None, Some(Confirmation::Pending), Some(Confirmation::Failed)][(n % 3) as usize];
    r.user.confirmed = n % 2 == 1;
    r.user.created_at = at(n * SEC);
    r.user.updated_at = at(n * SEC + 517);
    r.user.last_login_at = (n % 4 != 0).then(|| at(n * SEC + 251));
    r.password_hash =
        (n % 5 != 4).then(|| format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${username}{n}"));
    r
}

/// A link with every field set, varied by `n`.
pub fn rich_identity(scope: &Scope, user_id: Uuid, provider_name: &str, client_id: &str, n: i64) -> Identity {
    Identity {
        access_token: Some(format!("token-{n}-{provider_name}")),
        access_token_expiry: (n % 2 == 0).then(|| at(DAY + n * SEC)),
        refresh_token: (n % 3 == 0).then(|| format!("refresh-{n}-{provider_name}")),
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
        refresh_token: None,
        created_at: at(0),
        updated_at: at(0),
    }
}
