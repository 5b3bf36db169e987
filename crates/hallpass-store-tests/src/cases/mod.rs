//! The cases. Each takes a fresh, empty store.
//!
//! One file per section; this file holds the imports and helpers they share and
//! re-exports every case, so `conformance!` finds each as `cases::<name>`.

mod admin;
mod codes;
mod events;
mod flows;
mod identities;
mod isolation;
mod keys;
mod maintenance;
mod mfa;
mod outbox;
mod passkeys;
mod sessions;
mod throttle;
mod transfer;
mod users;
mod webhooks;

pub use admin::*;
pub use codes::*;
pub use events::*;
pub use flows::*;
pub use identities::*;
pub use isolation::*;
pub use keys::*;
pub use maintenance::*;
pub use mfa::*;
pub use outbox::*;
pub use passkeys::*;
pub use sessions::*;
pub use throttle::*;
pub use transfer::*;
pub use users::*;
pub use webhooks::*;

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

/// A cap on session data no case of the suite reaches.
const NO_CAP: usize = 1 << 20;

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
