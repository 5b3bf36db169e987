//! Sessions: checking a token (through the process's cache), freshening it
//! ([`freshen_interval`]), the application's data on it, ending one, the others or all of a
//! user's, and listing a user's sessions.

use super::Hallpass;
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::SessionToken;
use crate::store::{Change, SessionChange};
use crate::types::*;
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// The least a freshen moves a session's expiry by before it writes: a hundredth of the
/// idle timeout, at most a minute (24 h idle: a minute; 90 s idle: 0.9 s).
pub fn freshen_interval(idle: Duration) -> Duration {
    (idle / 100_i32).min(Duration::minutes(1))
}

/// The change of one session, named by its token (for caches) and, when known, by its id
/// and user (for the change stream).
fn session_change(scope: &Scope, token: &SessionToken, known: Option<(Uuid, Uuid)>, ended: bool) -> Change {
    Change::Session(SessionChange {
        scope: scope.clone(),
        hash: token.hash(),
        id: known.map(|k| k.0),
        user: known.map(|k| k.1),
        ended,
    })
}

impl Hallpass {
    /// The valid session of a token and its user. With `cached`, a good cached copy
    /// answers; a copy that would refuse (expired, inactive user) never does on its own:
    /// another process may have freshened the session since, so the database decides.
    async fn valid_session_from(
        &self,
        scope: &Scope,
        token: &SessionToken,
        cached: bool,
    ) -> Result<Arc<SessionView>> {
        if !token.expose().starts_with(SessionToken::PREFIX) || token.expose().len() > 128 {
            return Err(Error::SessionInvalid);
        }
        let hash = token.hash();
        let now = self.now();
        let valid = |session: &Session, user: &User| {
            // A cached copy is keyed by the token alone: it answers for its own scope only.
            session.scope == *scope && session.is_valid_at(now) && user.active
        };
        let caches = self.caches.as_ref().filter(|_| cached);
        if let Some(caches) = caches
            && let Some(view) = caches.session(&hash)
            && valid(&view.session, &view.user)
        {
            return Ok(view);
        }
        let ticket = caches.map(|c| c.ticket());
        let (session, user) = self.store.find_session(scope, &hash).await?.ok_or(Error::SessionInvalid)?;
        if !valid(&session, &user) {
            return Err(Error::SessionInvalid);
        }
        let view = Arc::new(SessionView::new(session, user));
        if let (Some(caches), Some(ticket)) = (caches, ticket) {
            caches.keep_session(hash, Arc::clone(&view), ticket);
        }
        Ok(view)
    }

    async fn valid_session(&self, scope: &Scope, token: &SessionToken) -> Result<Arc<SessionView>> {
        self.valid_session_from(scope, token, true).await
    }

    /// The session of a token and its user. Does not extend the session.
    pub async fn get_session(&self, scope: &Scope, token: &SessionToken) -> Result<(Session, User)> {
        let view = self.valid_session(scope, token).await?;
        Ok((view.session.clone(), view.user.clone()))
    }

    /// [`Hallpass::get_session`] without copying: a cached session answers with the very
    /// view it keeps, shared by every caller (see [`SessionView::rendered`]).
    pub async fn get_session_view(&self, scope: &Scope, token: &SessionToken) -> Result<Arc<SessionView>> {
        self.valid_session(scope, token).await
    }

    /// Extends the session's idle expiry (never past its absolute expiry).
    ///
    /// Writes at most once per [`freshen_interval`] of the scope's idle timeout: when the
    /// expiry would move by less, nothing is written and the session is returned as it is
    /// (its `last_seen_at` then lags by less than the interval). An application that
    /// freshens on every request costs one write per interval, not one per request.
    pub async fn freshen(&self, scope: &Scope, token: &SessionToken) -> Result<Session> {
        // From the database, not the cache: the answer is what is stored now.
        let session = self.valid_session_from(scope, token, false).await?.session.clone();
        let now = self.now();
        let idle = self.scope_settings(scope).session_idle_timeout;
        let expires_at = (now + idle).min(session.absolute_expires_at);
        if expires_at - session.expires_at < freshen_interval(idle) {
            return Ok(session);
        }
        let freshened = self.store.freshen_session(scope, &token.hash(), now, expires_at).await?;
        self.changed(session_change(scope, token, Some((session.id, session.user_id)), false)).await;
        freshened.ok_or(Error::SessionInvalid)
    }

    /// Applies a JSON merge patch to the session's data. A result larger than
    /// [`crate::Limits::max_session_data_bytes`] answers [`Error::TooLarge`] and changes
    /// nothing.
    pub async fn patch_session_data(
        &self,
        scope: &Scope,
        token: &SessionToken,
        patch: &serde_json::Value,
    ) -> Result<Session> {
        if !patch.is_object() {
            return Err(Error::invalid("data", "a merge patch of session data must be a JSON object"));
        }
        check_json("data", patch)?;
        let view = self.valid_session(scope, token).await?;
        let max_bytes = self.settings.limits.max_session_data_bytes;
        let patched = self.store.patch_session_data(scope, &token.hash(), patch, max_bytes).await?;
        self.changed(session_change(scope, token, Some((view.session.id, view.user.id)), false)).await;
        patched.ok_or(Error::SessionInvalid)
    }

    /// Ends a session. Ending one that is already ended (or never existed) succeeds.
    pub async fn end_session(&self, scope: &Scope, token: &SessionToken) -> Result<()> {
        // Its id and user, for the change stream's `session.ended` (a session no longer
        // valid is ended all the same, unnamed: no client may hold it as valid).
        let known = self.valid_session(scope, token).await.ok().map(|v| (v.session.id, v.user.id));
        let rows = match known {
            Some((session, user)) => self.session_ended_rows(scope, user, Some(session), "logout").await,
            None => Vec::new(),
        };
        let ended = self.store.delete_session_by_hash(scope, &token.hash(), &rows).await?;
        self.changed(session_change(scope, token, known, true)).await;
        if ended.is_some() {
            self.webhooks_queued(&rows);
        }
        Ok(())
    }

    /// Ends every other session of the token's user, keeping this one.
    pub async fn end_other_sessions(&self, scope: &Scope, token: &SessionToken) -> Result<u64> {
        let view = self.valid_session(scope, token).await?;
        let user_id = view.user.id;
        let rows = self.session_ended_rows(scope, user_id, None, "others_ended").await;
        let ended = self.store.delete_sessions(scope, user_id, Some(view.session.id), &rows).await?;
        if ended > 0 {
            self.webhooks_queued(&rows);
        }
        self.changed(Change::user(scope, user_id)).await;
        Ok(ended)
    }

    /// The user's valid sessions, newest first.
    pub async fn list_sessions(&self, scope: &Scope, r: &UserRef) -> Result<Vec<Session>> {
        let user = self.resolve(scope, r).await?.user;
        Ok(self.store.list_sessions(scope, user.id, self.now()).await?)
    }

    /// Ends one session of a user.
    pub async fn end_user_session(&self, scope: &Scope, r: &UserRef, session_id: Uuid) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        let rows = self.session_ended_rows(scope, user.id, Some(session_id), "ended_by_application").await;
        let ended = self.store.delete_session(scope, user.id, session_id, &rows).await?;
        if ended {
            self.webhooks_queued(&rows);
        }
        self.changed(Change::user(scope, user.id)).await;
        if ended { Ok(()) } else { Err(Error::SessionNotFound) }
    }

    /// Ends every session of a user.
    pub async fn end_user_sessions(&self, scope: &Scope, r: &UserRef) -> Result<u64> {
        let user = self.resolve(scope, r).await?.user;
        let rows = self.session_ended_rows(scope, user.id, None, "ended_by_application").await;
        let ended = self.store.delete_sessions(scope, user.id, None, &rows).await?;
        if ended > 0 {
            self.webhooks_queued(&rows);
        }
        self.changed(Change::user(scope, user.id)).await;
        Ok(ended)
    }

    /// The webhook deliveries of `session` (or, with `None`, of every session a call
    /// ends) of `user` ending, for `reason`: `logout`, `others_ended`,
    /// `ended_by_application`.
    async fn session_ended_rows(
        &self,
        scope: &Scope,
        user: Uuid,
        session: Option<Uuid>,
        reason: &str,
    ) -> Vec<crate::outbox::OutboxMessage> {
        let mut event =
            crate::webhook::Event::new(crate::webhook::EventType::SessionEnded, self.now(), Some(user))
                .with_str("reason", Some(reason));
        if let Some(s) = session {
            event = event.with_str("session_id", Some(&s.to_string()));
        } else {
            event = event.with_str("sessions", Some("all"));
        }
        self.webhook_rows(scope, event).await
    }
}
