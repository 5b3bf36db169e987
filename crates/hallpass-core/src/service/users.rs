//! Users: registering ([`NewUser`]), reading, listing, changing and deleting them, and
//! setting a password (judged for strength first, [`Hallpass::check_password_strength`]).

use super::{Hallpass, page_limit, parse_cursor};
use crate::error::{Error, Result};
use crate::model::*;
use crate::password::strength;
use crate::store::Change;
use crate::types::*;
use uuid::Uuid;

/// A new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Username (this or email is required).
    pub username: Option<Username>,
    /// Email (this or username is required).
    pub email: Option<Email>,
    /// Password; a user without one logs in only through a provider or a code.
    pub password: Option<Password>,
    /// Group; `"default"` when absent.
    pub group: Option<Group>,
    /// The application's data; `{}` when absent.
    pub extra: Option<JsonObject>,
    /// Active; `true` when absent.
    pub active: Option<bool>,
}

impl Hallpass {
    pub(super) async fn resolve(&self, scope: &Scope, r: &UserRef) -> Result<UserRecord> {
        self.store.find_user(scope, r).await?.ok_or(Error::UserNotFound)
    }

    /// Registers a user. When this server sends mail and the scope requires confirmation,
    /// a user with an email gets the confirmation mail (queued with the user, atomically).
    pub async fn register(&self, scope: &Scope, new: NewUser) -> Result<User> {
        if new.username.is_none() && new.email.is_none() {
            return Err(Error::invalid("username", "a username or an email is required"));
        }
        if let Some(extra) = &new.extra {
            check_json_object("extra", extra)?;
            self.settings.limits.check_user_extra(extra)?;
        }
        let password_hash = match new.password {
            Some(p) => {
                self.check_password_strength(scope, &p, new.username.as_ref(), new.email.as_ref()).await?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        let now = self.now();
        let user = User {
            id: Uuid::now_v7(),
            scope: scope.clone(),
            username: new.username,
            email: new.email,
            group: new.group.unwrap_or_else(Group::default_group),
            extra: new.extra.unwrap_or_default(),
            active: new.active.unwrap_or(true),
            confirmation: None,
            confirmed: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        self.insert_new_user(&UserRecord { user: user.clone(), password_hash }).await?;
        Ok(user)
    }

    /// A user by id, username or email.
    pub async fn get_user(&self, scope: &Scope, r: &UserRef) -> Result<User> {
        Ok(self.resolve(scope, r).await?.user)
    }

    /// Users of the scope, a page at a time.
    pub async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<User>> {
        let limit = page_limit(limit)?;
        let after = parse_cursor(cursor)?;
        if filter.query.as_ref().is_some_and(|q| q.chars().count() > 320 || q.contains('\0')) {
            return Err(Error::invalid("query", "must be at most 320 characters without NUL"));
        }
        if filter.group.as_ref().is_some_and(|g| g.chars().count() > 64 || g.contains('\0')) {
            return Err(Error::invalid("group", "must be at most 64 characters without NUL"));
        }
        let mut items = self.store.list_users(scope, filter, after, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|u| u.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Changes a user. Deactivation ends every session of the user. When this server sends
    /// mail, a change of email tells the old address and, where the scope requires
    /// confirmation, starts the confirmation of the new one (in the change's transaction).
    pub async fn update_user(&self, scope: &Scope, r: &UserRef, patch: UserPatch) -> Result<User> {
        if let Some(extra) = &patch.extra {
            check_json_object("extra", extra)?;
            self.settings.limits.check_user_extra(extra)?;
        }
        let current = self.resolve(scope, r).await?.user;
        let username_left = match &patch.username {
            Some(u) => u.is_some(),
            None => current.username.is_some(),
        };
        let email_left = match &patch.email {
            Some(e) => e.is_some(),
            None => current.email.is_some(),
        };
        if !username_left && !email_left {
            return Err(Error::invalid("username", "a user must keep a username or an email"));
        }
        let email_changes = patch
            .email
            .as_ref()
            .is_some_and(|new| new.as_ref().map(Email::key) != current.email.as_ref().map(Email::key));
        if self.mail_enabled() && email_changes {
            return self.change_email_with_mail(scope, current, patch).await;
        }
        let now = self.now();
        let rows = self.user_update_rows(scope, &current, &patch, now).await;
        let updated = if rows.is_empty() {
            self.store.update_user(scope, current.id, &patch, now).await?
        } else {
            let e = crate::outbox::Enqueue { user: None, code: None, messages: &rows };
            self.store.update_user_enqueue(scope, current.id, &patch, now, &e).await?
        };
        self.changed(Change::user(scope, current.id)).await;
        if updated.is_some() {
            self.webhooks_queued(&rows);
        }
        updated.ok_or(Error::UserNotFound)
    }

    /// The webhook deliveries of a change of `current` by `patch`: `user.deactivated` or
    /// `user.reactivated` when `active` flips, `user.updated` (with the names of the
    /// fields given) when any other field is given.
    pub(super) async fn user_update_rows(
        &self,
        scope: &Scope,
        current: &User,
        patch: &UserPatch,
        now: time::OffsetDateTime,
    ) -> Vec<crate::outbox::OutboxMessage> {
        use crate::webhook::{Event, EventType};
        let mut rows = Vec::new();
        match patch.active {
            Some(false) if current.active => {
                let e = Event::new(EventType::UserDeactivated, now, Some(current.id)).with_user(current);
                rows.extend(self.webhook_rows(scope, e).await);
            }
            Some(true) if !current.active => {
                let e = Event::new(EventType::UserReactivated, now, Some(current.id)).with_user(current);
                rows.extend(self.webhook_rows(scope, e).await);
            }
            _ => {}
        }
        let mut changed = Vec::new();
        for (name, given) in [
            ("username", patch.username.is_some()),
            ("email", patch.email.is_some()),
            ("group", patch.group.is_some()),
            ("extra", patch.extra.is_some()),
            ("confirmation", patch.confirmation.is_some()),
            ("confirmed", patch.confirmed.is_some()),
        ] {
            if given {
                changed.push(serde_json::Value::String(name.to_owned()));
            }
        }
        if !changed.is_empty() {
            let mut after = current.clone();
            if let Some(u) = &patch.username {
                after.username = u.clone();
            }
            if let Some(e) = &patch.email {
                after.email = e.clone();
            }
            let e = Event::new(EventType::UserUpdated, now, Some(current.id))
                .with_user(&after)
                .with("changed", Some(serde_json::Value::Array(changed)));
            rows.extend(self.webhook_rows(scope, e).await);
        }
        rows
    }

    /// Deletes a user with their sessions, codes and provider links.
    pub async fn delete_user(&self, scope: &Scope, r: &UserRef) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        let event =
            crate::webhook::Event::new(crate::webhook::EventType::UserDeleted, self.now(), Some(user.id))
                .with_user(&user);
        let rows = self.webhook_rows(scope, event).await;
        let deleted = self.store.delete_user(scope, user.id, &rows).await?;
        self.changed(Change::user(scope, user.id)).await;
        if deleted {
            self.webhooks_queued(&rows);
        }
        if deleted { Ok(()) } else { Err(Error::UserNotFound) }
    }

    /// Refuses a new password that is too easy to guess for the scope's
    /// `min_password_score` ([`Error::WeakPassword`] with advice a person can act on),
    /// counting the user's own username and email as known to the attacker (see
    /// [`crate::password::strength`]). [`Password::new`] has already checked the length.
    ///
    /// Every operation that sets a new password calls this before hashing; a login never
    /// does. The estimate is CPU-bound (up to ~100 ms for adversarial input), so it runs on
    /// the bounded hashing pool, never on the async workers.
    pub async fn check_password_strength(
        &self,
        scope: &Scope,
        password: &Password,
        username: Option<&Username>,
        email: Option<&Email>,
    ) -> Result<()> {
        let min_score = self.scope_settings(scope).min_password_score;
        if min_score == 0 {
            return Ok(());
        }
        let words = strength::user_words(username.map(Username::as_str), email.map(Email::as_str));
        let password = password.clone();
        self.hasher
            .run(move || strength::check(&password, min_score, &words))
            .await?
            .map_err(Error::WeakPassword)
    }

    /// Sets a user's password and ends every session of the user.
    pub async fn set_password(&self, scope: &Scope, r: &UserRef, password: Password) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        self.check_password_strength(scope, &password, user.username.as_ref(), user.email.as_ref()).await?;
        let hash = self.hasher.hash(password).await?;
        let now = self.now();
        let event =
            crate::webhook::Event::new(crate::webhook::EventType::PasswordChanged, now, Some(user.id))
                .with_user(&user);
        let rows = self.webhook_rows(scope, event).await;
        let set = self.store.set_password_hash(scope, user.id, &hash, now, &rows).await?;
        self.changed(Change::user(scope, user.id)).await;
        if set {
            self.webhooks_queued(&rows);
            // A new password from the application also ends the account's throttle.
            self.store.throttle_clear(scope, &format!("acct:{}", user.id)).await?;
            Ok(())
        } else {
            Err(Error::UserNotFound)
        }
    }
}
