//! Changes applied to stored values, each written once for every store: [`UserPatch`]
//! and [`UserPatch::apply`] (what a change to a user does to the record, and what else it
//! must do in the same transaction), and RFC 7396 merge patches of JSON objects
//! ([`merge_patch`], and [`merge_session_patch`] with its size cap for session data).
//!
//! Stores read the row (locked for the transaction), call these, and write the result, so
//! a new user field is one change here plus its column in each backend.

use crate::error::{Error, Result};
use crate::model::{Confirmation, User};
use crate::store::StoreError;
use crate::types::{Email, Group, JsonObject, Username, json_size};
use time::OffsetDateTime;

/// A change to a user: only the fields that are `Some` change.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New username; `Some(None)` removes it.
    pub username: Option<Option<Username>>,
    /// New email; `Some(None)` removes it.
    pub email: Option<Option<Email>>,
    /// New group.
    pub group: Option<Group>,
    /// New extra (replaces the old object).
    pub extra: Option<JsonObject>,
    /// New active flag. Deactivation ends every session of the user.
    pub active: Option<bool>,
    /// New confirmation state.
    pub confirmation: Option<Option<Confirmation>>,
    /// New confirmed flag.
    pub confirmed: Option<bool>,
}

/// What a store must do, beside writing the patched user, in the same transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a deactivation ends sessions and an email change voids codes"]
pub struct PatchEffects {
    /// The patch deactivates the user: every session of the user ends.
    pub end_sessions: bool,
    /// The normalised email changed (a new one, one set where there was none, or one
    /// removed): every one-time code of the user, of every kind, is deleted (they were
    /// sent to the old address).
    pub void_codes: bool,
}

impl UserPatch {
    /// Applies the patch to `user` (only the fields that are `Some` change) and sets
    /// `updated_at` to `at`; answers what else the store must do in the same transaction.
    /// Uniqueness of the new username and email is the store's to check.
    pub fn apply(&self, user: &mut User, at: OffsetDateTime) -> PatchEffects {
        let email_before = user.email.as_ref().map(|e| e.key().to_owned());
        if let Some(username) = &self.username {
            user.username = username.clone();
        }
        if let Some(email) = &self.email {
            user.email = email.clone();
        }
        if let Some(group) = &self.group {
            user.group = group.clone();
        }
        if let Some(extra) = &self.extra {
            user.extra = extra.clone();
        }
        if let Some(active) = self.active {
            user.active = active;
        }
        if let Some(confirmation) = self.confirmation {
            user.confirmation = confirmation;
        }
        if let Some(confirmed) = self.confirmed {
            user.confirmed = confirmed;
        }
        user.updated_at = at;
        PatchEffects {
            end_sessions: self.active == Some(false),
            void_codes: email_before.as_deref() != user.email.as_ref().map(Email::key),
        }
    }
}

/// Applies an RFC 7396 JSON merge patch to a JSON object. The patch must be an object
/// (anything else would replace the object with a non-object).
pub fn merge_patch(target: &mut JsonObject, patch: &serde_json::Value) -> Result<()> {
    if !patch.is_object() {
        return Err(Error::invalid("data", "a merge patch of session data must be a JSON object"));
    }
    let mut doc = serde_json::Value::Object(std::mem::take(target));
    json_patch::merge(&mut doc, patch);
    if let serde_json::Value::Object(map) = doc {
        *target = map;
    }
    Ok(())
}

/// What every store does to patch session data: [`merge_patch`] into `target`, unless the
/// result would be larger than `max_bytes` of compact JSON; then `target` is left as it
/// was and the answer is [`StoreError::TooLarge`].
pub fn merge_session_patch(
    target: &mut JsonObject,
    patch: &serde_json::Value,
    max_bytes: usize,
) -> std::result::Result<(), StoreError> {
    let mut merged = target.clone();
    merge_patch(&mut merged, patch).map_err(|e| StoreError::Other(e.to_string()))?;
    if json_size(&merged) > max_bytes {
        return Err(StoreError::TooLarge { field: "data", max_bytes });
    }
    *target = merged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut data = json!({"a": 1, "b": {"c": 2, "d": 3}}).as_object().cloned().unwrap_or_default();
        merge_patch(&mut data, &json!({"a": null, "b": {"c": 5}, "e": [1]})).unwrap();
        assert_eq!(serde_json::Value::Object(data.clone()), json!({"b": {"c": 5, "d": 3}, "e": [1]}));
        assert!(merge_patch(&mut data, &json!([1])).is_err());
    }

    #[test]
    fn apply_changes_only_what_is_some_and_says_what_else_to_do() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let t1 = t0 + time::Duration::seconds(1);
        let mut user = User {
            id: uuid::Uuid::nil(),
            scope: crate::types::Scope::parse("app").unwrap(),
            username: Some(Username::parse("alice").unwrap()),
            email: Some(Email::parse("alice@example.com").unwrap()),
            group: Group::parse("default").unwrap(),
            extra: JsonObject::new(),
            active: true,
            confirmation: None,
            confirmed: false,
            created_at: t0,
            updated_at: t0,
            last_login_at: None,
        };
        let nothing = UserPatch::default().apply(&mut user, t1);
        assert_eq!(nothing, PatchEffects::default());
        assert_eq!(user.updated_at, t1);
        assert_eq!(user.username.as_ref().map(Username::as_str), Some("alice"));

        let same_key =
            UserPatch { email: Some(Some(Email::parse("alice@EXAMPLE.com").unwrap())), ..Default::default() };
        assert!(!same_key.apply(&mut user, t1).void_codes, "the normalised key did not change");
        let removed = UserPatch { email: Some(None), confirmed: Some(true), ..Default::default() };
        assert_eq!(removed.apply(&mut user, t1), PatchEffects { end_sessions: false, void_codes: true });
        assert!(user.email.is_none() && user.confirmed);
        let off = UserPatch { active: Some(false), ..Default::default() };
        assert_eq!(off.apply(&mut user, t1), PatchEffects { end_sessions: true, void_codes: false });
        assert!(!user.active);
    }
}
