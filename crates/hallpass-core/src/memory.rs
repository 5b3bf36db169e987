//! An in-memory [`Store`]: every table a plain collection behind one mutex.
//!
//! It is the reference backend of the conformance suite and the store of the service's
//! own tests and of embedders who want no database (nothing survives the process). Each
//! method takes the lock once and holds it for its whole body, so every method is atomic
//! just as a backend's transaction is. Every method checks everything it can refuse for
//! before it changes anything, so a write is either whole or absent.

use crate::flow::{FlowKind, FlowRecord};
use crate::mfa::{FactorChange, MfaState, TotpRecord};
use crate::model::*;
use crate::outbox::{Enqueue, OutboxClaim, OutboxMessage, OutboxState, OutboxStats, OutboxUpdate};
use crate::passkey::{PasskeyRecord, PasskeyUse};
use crate::patch::merge_session_patch;
use crate::secret::TokenHash;
use crate::store::{
    CodeRequest, CodeRequestOutcome, ExportedUser, ImportOutcome, ImportTaken, LoginStored, NewLogin, Store,
    StoreError, StoreResult, ThrottleState, ThrottleUpdate,
};
use crate::types::{Email, ProviderName, Scope, UserRef, Username};
use async_trait::async_trait;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The tables. Users sit in a `BTreeMap` by id so listings come out in id order; sessions
/// in a `HashMap` by token hash, the key of the hot path.
#[derive(Default)]
struct Tables {
    api_keys: Vec<(ApiKey, TokenHash)>,
    users: BTreeMap<Uuid, UserRecord>,
    sessions: HashMap<TokenHash, SessionRecord>,
    codes: Vec<CodeRecord>,
    identities: Vec<Identity>,
    flows: HashMap<TokenHash, FlowRecord>,
    totp: HashMap<(Scope, Uuid), TotpRecord>,
    recovery_codes: HashMap<(Scope, Uuid), HashSet<TokenHash>>,
    passkeys: Vec<PasskeyRecord>,
    events: Vec<LoginEvent>,
    throttles: HashMap<(Scope, String), ThrottleState>,
    audit: Vec<AuditEntry>,
    outbox: BTreeMap<Uuid, OutboxMessage>,
    webhooks: BTreeMap<Uuid, crate::webhook::WebhookEndpoint>,
}

impl Tables {
    /// Queues `messages`, all or none (a duplicate id writes nothing).
    fn queue(&mut self, messages: &[OutboxMessage]) -> StoreResult<()> {
        if messages.iter().any(|m| self.outbox.contains_key(&m.id)) {
            return Err(StoreError::Other("duplicate outbox id".into()));
        }
        for m in messages {
            self.outbox.insert(m.id, m.clone());
        }
        Ok(())
    }

    fn throttle_hit(
        &mut self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> ThrottleState {
        let fresh = ThrottleState { failures: 1, first_at: now, last_at: now, expires_at: now + window };
        let state = match self.throttles.entry((scope.clone(), key.to_owned())) {
            Entry::Occupied(e) => {
                let state = e.into_mut();
                if now < state.expires_at {
                    state.failures = state.failures.saturating_add(1);
                    state.last_at = now;
                } else {
                    *state = fresh;
                }
                state
            }
            Entry::Vacant(e) => e.insert(fresh),
        };
        *state
    }

    fn find(&self, scope: &Scope, by: &UserRef) -> Option<&UserRecord> {
        match by {
            UserRef::Id(id) => self.user(scope, *id),
            UserRef::Username(key) => self
                .users
                .values()
                .find(|r| &r.user.scope == scope && r.user.username.as_ref().is_some_and(|u| u.key() == key)),
            UserRef::Email(key) => self
                .users
                .values()
                .find(|r| &r.user.scope == scope && r.user.email.as_ref().is_some_and(|e| e.key() == key)),
        }
    }

    fn insert_code(&mut self, code: &CodeRecord) -> StoreResult<()> {
        if self.user(&code.scope, code.user_id).is_none() {
            return Err(StoreError::Other("code for a user that does not exist".into()));
        }
        if self.codes.iter().any(|c| c.code_hash == code.code_hash) {
            return Err(StoreError::Other("duplicate code hash".into()));
        }
        self.codes.retain(|c| !(c.scope == code.scope && c.user_id == code.user_id && c.kind == code.kind));
        self.codes.push(code.clone());
        Ok(())
    }

    /// Deletes every code of the user, of every kind (a password or email change).
    fn void_codes(&mut self, scope: &Scope, user_id: Uuid) {
        self.codes.retain(|c| !(&c.scope == scope && c.user_id == user_id));
    }

    fn user(&self, scope: &Scope, id: Uuid) -> Option<&UserRecord> {
        self.users.get(&id).filter(|r| &r.user.scope == scope)
    }

    fn user_mut(&mut self, scope: &Scope, id: Uuid) -> Option<&mut UserRecord> {
        self.users.get_mut(&id).filter(|r| &r.user.scope == scope)
    }

    /// Refuses a username or email another user of the scope already holds.
    fn check_unique(
        &self,
        scope: &Scope,
        username: Option<&Username>,
        email: Option<&Email>,
        except: Option<Uuid>,
    ) -> StoreResult<()> {
        let others = self.users.values().filter(|r| &r.user.scope == scope && Some(r.user.id) != except);
        for other in others {
            if let (Some(mine), Some(theirs)) = (username, &other.user.username)
                && mine.key() == theirs.key()
            {
                return Err(StoreError::UsernameTaken);
            }
            if let (Some(mine), Some(theirs)) = (email, &other.user.email)
                && mine.key() == theirs.key()
            {
                return Err(StoreError::EmailTaken);
            }
        }
        Ok(())
    }

    /// Ends every session of the user but `keep`; returns how many ended.
    fn end_sessions(&mut self, scope: &Scope, user_id: Uuid, keep: Option<Uuid>) -> u64 {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| {
            let s = &s.session;
            !(&s.scope == scope && s.user_id == user_id && Some(s.id) != keep)
        });
        (before - self.sessions.len()) as u64
    }

    fn session(&self, scope: &Scope, hash: &TokenHash) -> Option<&SessionRecord> {
        self.sessions.get(hash).filter(|s| &s.session.scope == scope)
    }

    fn session_mut(&mut self, scope: &Scope, hash: &TokenHash) -> Option<&mut SessionRecord> {
        self.sessions.get_mut(hash).filter(|s| &s.session.scope == scope)
    }

    /// The index of a valid code of `kind` with that hash in the scope.
    fn valid_code(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Option<usize> {
        self.codes.iter().position(|c| {
            &c.scope == scope && c.kind == kind && c.code_hash.ct_eq(hash) && now < c.expires_at
        })
    }
}

/// The order of an export: (scope, id), scopes by their bytes.
fn key(r: &UserRecord) -> (&str, Uuid) {
    (r.user.scope.as_str(), r.user.id)
}

/// A [`Store`] kept entirely in memory. Cheap to create; share it behind an `Arc`.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.lock();
        f.debug_struct("MemoryStore")
            .field("users", &t.users.len())
            .field("sessions", &t.sessions.len())
            .field("codes", &t.codes.len())
            .field("identities", &t.identities.len())
            .field("events", &t.events.len())
            .field("api_keys", &t.api_keys.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every login event of the scope, in the order they were stored, failed attempts for
    /// unknown users included (the [`Store`] trait lists events by user only). For tests
    /// and inspection.
    pub fn events(&self, scope: &Scope) -> Vec<LoginEvent> {
        self.lock().events.iter().filter(|e| &e.scope == scope).cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while the lock was held cannot have left half a write (each method
        // checks before it changes anything), so a poisoned lock is safe to take over.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    // ---- API keys

    async fn insert_api_key(&self, key: &ApiKey, hash: &TokenHash) -> StoreResult<()> {
        let mut t = self.lock();
        if t.api_keys.iter().any(|(k, h)| k.id == key.id || h == hash) {
            return Err(StoreError::Other("duplicate api key".into()));
        }
        t.api_keys.push((key.clone(), *hash));
        Ok(())
    }

    async fn find_api_key(&self, hash: &TokenHash) -> StoreResult<Option<ApiKey>> {
        let t = self.lock();
        Ok(t.api_keys.iter().find(|(k, h)| h.ct_eq(hash) && k.revoked_at.is_none()).map(|(k, _)| k.clone()))
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let t = self.lock();
        let mut keys: Vec<ApiKey> = t.api_keys.iter().map(|(k, _)| k.clone()).collect();
        keys.sort_by_key(|k| (k.created_at, k.id));
        Ok(keys)
    }

    async fn touch_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        let mut t = self.lock();
        if let Some((k, _)) = t.api_keys.iter_mut().find(|(k, _)| k.id == id) {
            k.last_used_at = Some(k.last_used_at.map_or(at, |was| was.max(at)));
        }
        Ok(())
    }

    async fn revoke_api_key(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool> {
        let mut t = self.lock();
        match t.api_keys.iter_mut().find(|(k, _)| k.id == id && k.revoked_at.is_none()) {
            Some((k, _)) => {
                k.revoked_at = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    // ---- users

    async fn insert_user(&self, record: &UserRecord) -> StoreResult<()> {
        let mut t = self.lock();
        let user = &record.user;
        t.check_unique(&user.scope, user.username.as_ref(), user.email.as_ref(), None)?;
        if t.users.contains_key(&user.id) {
            return Err(StoreError::Other("duplicate user id".into()));
        }
        t.users.insert(user.id, record.clone());
        Ok(())
    }

    async fn find_user(&self, scope: &Scope, by: &UserRef) -> StoreResult<Option<UserRecord>> {
        Ok(self.lock().find(scope, by).cloned())
    }

    async fn list_users(
        &self,
        scope: &Scope,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        let t = self.lock();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let query = filter.query.as_ref().map(|q| q.to_lowercase());
        let matches = |u: &User| {
            let query_ok = query.as_ref().is_none_or(|q| {
                u.username.as_ref().is_some_and(|n| n.as_str().to_lowercase().contains(q))
                    || u.email.as_ref().is_some_and(|e| e.as_str().to_lowercase().contains(q))
            });
            let group_ok = filter.group.as_ref().is_none_or(|g| u.group.as_str() == g);
            let active_ok = filter.active.is_none_or(|a| u.active == a);
            &u.scope == scope && query_ok && group_ok && active_ok
        };
        Ok(t.users
            .range((start, Bound::Unbounded))
            .map(|(_, r)| &r.user)
            .filter(|u| matches(u))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn update_user(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<User>> {
        let mut t = self.lock();
        let Some(current) = t.user(scope, id) else {
            return Ok(None);
        };
        let mut user = current.user.clone();
        let effects = patch.apply(&mut user, at);
        t.check_unique(scope, user.username.as_ref(), user.email.as_ref(), Some(id))?;
        if effects.end_sessions {
            t.end_sessions(scope, id, None);
        }
        if effects.void_codes {
            t.void_codes(scope, id);
        }
        if let Some(record) = t.user_mut(scope, id) {
            record.user = user.clone();
        }
        Ok(Some(user))
    }

    async fn delete_user(&self, scope: &Scope, id: Uuid, outbox: &[OutboxMessage]) -> StoreResult<bool> {
        let mut t = self.lock();
        if t.user(scope, id).is_none() {
            return Ok(false);
        }
        t.queue(outbox)?;
        t.users.remove(&id);
        t.end_sessions(scope, id, None);
        t.void_codes(scope, id);
        t.identities.retain(|i| !(&i.scope == scope && i.user_id == id));
        t.totp.remove(&(scope.clone(), id));
        t.recovery_codes.remove(&(scope.clone(), id));
        t.passkeys.retain(|p| !(&p.scope == scope && p.user_id == id));
        Ok(true)
    }

    async fn set_password_hash(
        &self,
        scope: &Scope,
        id: Uuid,
        hash: &str,
        at: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        if t.user(scope, id).is_none() {
            return Ok(false);
        }
        t.queue(outbox)?;
        let Some(record) = t.user_mut(scope, id) else {
            return Ok(false);
        };
        record.password_hash = Some(hash.to_owned());
        record.user.updated_at = at;
        t.end_sessions(scope, id, None);
        t.void_codes(scope, id);
        Ok(true)
    }

    async fn rehash_password(&self, scope: &Scope, id: Uuid, old: &str, new: &str) -> StoreResult<bool> {
        let mut t = self.lock();
        match t.user_mut(scope, id) {
            Some(record) if record.password_hash.as_deref() == Some(old) => {
                record.password_hash = Some(new.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    // ---- sessions

    async fn insert_login(&self, login: &NewLogin) -> StoreResult<LoginStored> {
        let mut t = self.lock();
        let session = &login.session.session;
        let scope = &session.scope;
        if t.user(scope, session.user_id).is_none() {
            return Err(StoreError::Other("login of a user that does not exist".into()));
        }
        if t.sessions.contains_key(&login.session.token_hash) {
            return Err(StoreError::Other("duplicate session token hash".into()));
        }
        if let Some(notice) = &login.notice {
            if t.outbox.contains_key(&notice.id) {
                return Err(StoreError::Other("duplicate outbox id".into()));
            }
            t.outbox.insert(notice.id, notice.clone());
        }
        t.queue(&login.webhooks)?;
        t.sessions.insert(login.session.token_hash, login.session.clone());
        t.events.push(login.event.clone());
        if let Some(record) = t.user_mut(scope, session.user_id) {
            record.user.last_login_at = Some(session.created_at);
        }
        let mut stored = LoginStored::default();
        if let Some(max) = login.max_sessions.map(|m| m.max(1)) {
            let mut mine: Vec<(OffsetDateTime, Uuid, TokenHash)> = t
                .sessions
                .iter()
                .filter(|(_, s)| &s.session.scope == scope && s.session.user_id == session.user_id)
                .map(|(h, s)| (s.session.created_at, s.session.id, *h))
                .collect();
            if mine.len() > max as usize {
                // Oldest first; the surplus at the front goes.
                mine.sort_by_key(|(created, id, _)| (*created, *id));
                let surplus = mine.len() - max as usize;
                for (_, _, hash) in mine.into_iter().take(surplus) {
                    t.sessions.remove(&hash);
                }
                stored.ended = surplus as u64;
            }
        }
        Ok(stored)
    }

    async fn find_session(&self, scope: &Scope, hash: &TokenHash) -> StoreResult<Option<(Session, User)>> {
        let t = self.lock();
        let Some(record) = t.session(scope, hash) else {
            return Ok(None);
        };
        Ok(t.user(scope, record.session.user_id).map(|u| (record.session.clone(), u.user.clone())))
    }

    async fn freshen_session(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let mut t = self.lock();
        Ok(t.session_mut(scope, hash).map(|record| {
            let s = &mut record.session;
            s.last_seen_at = last_seen_at;
            s.expires_at = s.expires_at.max(expires_at);
            s.clone()
        }))
    }

    async fn patch_session_data(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        patch: &serde_json::Value,
        max_bytes: usize,
    ) -> StoreResult<Option<Session>> {
        let mut t = self.lock();
        let Some(record) = t.session_mut(scope, hash) else {
            return Ok(None);
        };
        let mut data = record.session.data.clone();
        merge_session_patch(&mut data, patch, max_bytes)?;
        record.session.data = data;
        Ok(Some(record.session.clone()))
    }

    async fn delete_session_by_hash(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Session>> {
        let mut t = self.lock();
        if t.session(scope, hash).is_none() {
            return Ok(None);
        }
        t.queue(outbox)?;
        Ok(t.sessions.remove(hash).map(|r| r.session))
    }

    async fn delete_session(
        &self,
        scope: &Scope,
        user_id: Uuid,
        session_id: Uuid,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        let mine = |r: &SessionRecord| {
            let s = &r.session;
            &s.scope == scope && s.user_id == user_id && s.id == session_id
        };
        if !t.sessions.values().any(mine) {
            return Ok(false);
        }
        t.queue(outbox)?;
        t.sessions.retain(|_, r| !mine(r));
        Ok(true)
    }

    async fn delete_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<u64> {
        let mut t = self.lock();
        let n = t.end_sessions(scope, user_id, keep);
        if n > 0 {
            t.queue(outbox)?;
        }
        Ok(n)
    }

    async fn list_sessions(
        &self,
        scope: &Scope,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let t = self.lock();
        let mut out: Vec<Session> = t
            .sessions
            .values()
            .map(|r| &r.session)
            .filter(|s| &s.scope == scope && s.user_id == user_id && s.is_valid_at(now))
            .cloned()
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(out)
    }

    // ---- one-time codes

    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        self.lock().insert_code(code)
    }

    async fn request_code(&self, scope: &Scope, req: &CodeRequest) -> StoreResult<CodeRequestOutcome> {
        let mut t = self.lock();
        let requests = t.throttle_hit(scope, &req.throttle_key, req.created_at, req.window);
        let user_id = t.find(scope, &req.login).map(|r| r.user.id);
        let stored = match user_id {
            Some(id) if req.within_limit(&requests) => {
                t.insert_code(&req.record(scope, id))?;
                if let Some(m) = req.outbox.as_ref().filter(|m| m.user_id == Some(id)) {
                    t.outbox.insert(m.id, m.clone());
                }
                true
            }
            _ => false,
        };
        Ok(CodeRequestOutcome { user_id, stored, requests })
    }

    async fn code_owner(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Uuid>> {
        let t = self.lock();
        Ok(t.valid_code(scope, kind, hash, now).map(|i| t.codes[i].user_id))
    }

    async fn redeem_reset_code(
        &self,
        scope: &Scope,
        hash: &TokenHash,
        now: OffsetDateTime,
        new_hash: &str,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        let mut t = self.lock();
        let Some(index) = t.valid_code(scope, CodeKind::Reset, hash, now) else {
            return Ok(None);
        };
        let user_id = t.codes[index].user_id;
        if t.user(scope, user_id).is_none() {
            return Ok(None);
        }
        t.queue(outbox)?;
        let Some(record) = t.user_mut(scope, user_id) else {
            return Ok(None);
        };
        record.password_hash = Some(new_hash.to_owned());
        record.user.updated_at = now;
        t.codes.remove(index);
        t.end_sessions(scope, user_id, None);
        t.void_codes(scope, user_id);
        Ok(Some(user_id))
    }

    async fn redeem_code(
        &self,
        scope: &Scope,
        kind: CodeKind,
        hash: &TokenHash,
        now: OffsetDateTime,
        outbox: &[OutboxMessage],
    ) -> StoreResult<Option<Uuid>> {
        let mut t = self.lock();
        let Some(index) = t.valid_code(scope, kind, hash, now) else {
            return Ok(None);
        };
        let user_id = t.codes[index].user_id;
        if t.user(scope, user_id).is_none() {
            return Ok(None);
        }
        t.queue(outbox)?;
        let Some(record) = t.user_mut(scope, user_id) else {
            return Ok(None);
        };
        if kind == CodeKind::Confirm {
            record.user.confirmed = true;
            record.user.confirmation = None;
            record.user.updated_at = now;
        }
        t.codes.remove(index);
        Ok(Some(user_id))
    }

    // ---- second factors

    async fn mfa_state(&self, scope: &Scope, user_id: Uuid) -> StoreResult<MfaState> {
        let t = self.lock();
        let key = (scope.clone(), user_id);
        Ok(MfaState {
            totp: t.totp.get(&key).cloned(),
            recovery_codes: t.recovery_codes.get(&key).map_or(0, |c| c.len() as u32),
            passkeys: t.passkeys.iter().filter(|p| &p.scope == scope && p.user_id == user_id).count() as u32,
        })
    }

    async fn enrol_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        secret: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        let key = (scope.clone(), user_id);
        if t.user(scope, user_id).is_none() || t.totp.get(&key).is_some_and(|r| r.confirmed) {
            return Ok(false);
        }
        t.totp.insert(
            key,
            TotpRecord { secret: secret.to_owned(), confirmed: false, last_step: None, created_at: at },
        );
        Ok(true)
    }

    async fn accept_totp_step(
        &self,
        scope: &Scope,
        user_id: Uuid,
        step: i64,
        confirm: Option<&FactorChange>,
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        let key = (scope.clone(), user_id);
        let Some(record) = t.totp.get_mut(&key) else { return Ok(false) };
        if record.confirmed == confirm.is_some() || record.last_step.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        if let Some(change) = confirm {
            t.queue(&change.outbox)?;
        }
        let Some(record) = t.totp.get_mut(&key) else { return Ok(false) };
        record.last_step = Some(step);
        if let Some(change) = confirm {
            record.confirmed = true;
            t.recovery_codes.insert(key, change.recovery_codes.iter().copied().collect());
            t.end_sessions(scope, user_id, change.keep_session);
        }
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        scope: &Scope,
        user_id: Uuid,
        codes: &[TokenHash],
        _at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        let key = (scope.clone(), user_id);
        if !t.totp.get(&key).is_some_and(|r| r.confirmed) {
            return Ok(false);
        }
        t.recovery_codes.insert(key, codes.iter().copied().collect());
        Ok(true)
    }

    async fn use_recovery_code(
        &self,
        scope: &Scope,
        user_id: Uuid,
        hash: &TokenHash,
    ) -> StoreResult<Option<u32>> {
        let mut t = self.lock();
        let Some(codes) = t.recovery_codes.get_mut(&(scope.clone(), user_id)) else { return Ok(None) };
        let used = codes.remove(hash);
        Ok(used.then_some(codes.len() as u32))
    }

    async fn remove_mfa(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        let key = (scope.clone(), user_id);
        let any = t.totp.contains_key(&key)
            || t.recovery_codes.get(&key).is_some_and(|c| !c.is_empty())
            || t.passkeys.iter().any(|p| &p.scope == scope && p.user_id == user_id);
        if !any {
            return Ok(false);
        }
        t.queue(outbox)?;
        t.totp.remove(&key);
        t.recovery_codes.remove(&key);
        t.passkeys.retain(|p| !(&p.scope == scope && p.user_id == user_id));
        t.end_sessions(scope, user_id, keep_session);
        Ok(true)
    }

    async fn remove_totp(
        &self,
        scope: &Scope,
        user_id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        let key = (scope.clone(), user_id);
        if !t.totp.contains_key(&key) {
            return Ok(false);
        }
        t.queue(outbox)?;
        t.totp.remove(&key);
        if !t.passkeys.iter().any(|p| &p.scope == scope && p.user_id == user_id) {
            t.recovery_codes.remove(&key);
        }
        t.end_sessions(scope, user_id, keep_session);
        Ok(true)
    }

    // ---- passkeys

    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        if t.user(&passkey.scope, passkey.user_id).is_none()
            || t.passkeys.iter().any(|p| p.scope == passkey.scope && p.credential_id == passkey.credential_id)
        {
            return Ok(false);
        }
        t.queue(outbox)?;
        t.passkeys.push(passkey.clone());
        t.end_sessions(&passkey.scope, passkey.user_id, keep_session);
        Ok(true)
    }

    async fn list_passkeys(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        let t = self.lock();
        let mut list: Vec<_> =
            t.passkeys.iter().filter(|p| &p.scope == scope && p.user_id == user_id).cloned().collect();
        list.sort_by_key(|p| (p.created_at, p.id));
        Ok(list)
    }

    async fn find_passkey(&self, scope: &Scope, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        let t = self.lock();
        Ok(t.passkeys.iter().find(|p| &p.scope == scope && p.credential_id == credential_id).cloned())
    }

    async fn use_passkey(&self, scope: &Scope, id: Uuid, used: &PasskeyUse) -> StoreResult<bool> {
        let mut t = self.lock();
        let Some(p) = t.passkeys.iter_mut().find(|p| &p.scope == scope && p.id == id) else {
            return Ok(false);
        };
        p.credential = used.credential.clone();
        p.counter = used.counter;
        p.backup_eligible = used.backup_eligible;
        p.backup_state = used.backup_state;
        p.last_used_at = Some(used.at);
        Ok(true)
    }

    async fn rename_passkey(&self, scope: &Scope, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        let mut t = self.lock();
        let Some(p) = t.passkeys.iter_mut().find(|p| &p.scope == scope && p.user_id == user_id && p.id == id)
        else {
            return Ok(false);
        };
        p.name = name.to_owned();
        Ok(true)
    }

    async fn delete_passkey(
        &self,
        scope: &Scope,
        user_id: Uuid,
        id: Uuid,
        keep_session: Option<Uuid>,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        if !t.passkeys.iter().any(|p| &p.scope == scope && p.user_id == user_id && p.id == id) {
            return Ok(false);
        }
        t.queue(outbox)?;
        t.passkeys.retain(|p| !(&p.scope == scope && p.user_id == user_id && p.id == id));
        // The last factor gone: the recovery codes that backed it up go too.
        let key = (scope.clone(), user_id);
        if !t.passkeys.iter().any(|p| &p.scope == scope && p.user_id == user_id)
            && !t.totp.get(&key).is_some_and(|r| r.confirmed)
        {
            t.recovery_codes.remove(&key);
        }
        t.end_sessions(scope, user_id, keep_session);
        Ok(true)
    }

    // ---- flows

    async fn insert_flow(&self, flow: &FlowRecord) -> StoreResult<()> {
        self.lock().flows.insert(flow.hash, flow.clone());
        Ok(())
    }

    async fn take_flow(
        &self,
        scope: Option<&Scope>,
        kind: FlowKind,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<FlowRecord>> {
        let mut t = self.lock();
        let matches = t
            .flows
            .get(hash)
            .is_some_and(|f| f.kind == kind && scope.is_none_or(|s| s == &f.scope) && now < f.expires_at);
        Ok(if matches { t.flows.remove(hash) } else { None })
    }

    // ---- provider identities

    async fn upsert_identity(&self, identity: &Identity, outbox: &[OutboxMessage]) -> StoreResult<()> {
        let mut t = self.lock();
        let scope = &identity.scope;
        if t.user(scope, identity.user_id).is_none() {
            return Err(StoreError::Other("identity of a user that does not exist".into()));
        }
        let taken = t.identities.iter().any(|i| {
            &i.scope == scope
                && i.provider == identity.provider
                && i.client_id == identity.client_id
                && i.user_id != identity.user_id
        });
        if taken {
            return Err(StoreError::IdentityTaken);
        }
        t.queue(outbox)?;
        t.identities.retain(|i| {
            !(&i.scope == scope && i.user_id == identity.user_id && i.provider == identity.provider)
        });
        t.identities.push(identity.clone());
        Ok(())
    }

    async fn get_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
    ) -> StoreResult<Option<Identity>> {
        let t = self.lock();
        Ok(t.identities
            .iter()
            .find(|i| &i.scope == scope && i.user_id == user_id && &i.provider == provider)
            .cloned())
    }

    async fn find_identity(
        &self,
        scope: &Scope,
        provider: &ProviderName,
        client_id: &str,
    ) -> StoreResult<Option<Identity>> {
        let t = self.lock();
        Ok(t.identities
            .iter()
            .find(|i| &i.scope == scope && &i.provider == provider && i.client_id.as_str() == client_id)
            .cloned())
    }

    async fn list_identities(&self, scope: &Scope, user_id: Uuid) -> StoreResult<Vec<Identity>> {
        let t = self.lock();
        let mut out: Vec<Identity> =
            t.identities.iter().filter(|i| &i.scope == scope && i.user_id == user_id).cloned().collect();
        out.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(out)
    }

    async fn delete_identity(
        &self,
        scope: &Scope,
        user_id: Uuid,
        provider: &ProviderName,
        outbox: &[OutboxMessage],
    ) -> StoreResult<bool> {
        let mut t = self.lock();
        let linked = |i: &Identity| &i.scope == scope && i.user_id == user_id && &i.provider == provider;
        if !t.identities.iter().any(linked) {
            return Ok(false);
        }
        t.queue(outbox)?;
        t.identities.retain(|i| !linked(i));
        Ok(true)
    }

    // ---- login events

    async fn insert_event(&self, event: &LoginEvent, outbox: &[OutboxMessage]) -> StoreResult<()> {
        let mut t = self.lock();
        t.queue(outbox)?;
        t.events.push(event.clone());
        Ok(())
    }

    async fn list_events(
        &self,
        scope: &Scope,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<LoginEvent>> {
        let t = self.lock();
        let mut out: Vec<LoginEvent> = t
            .events
            .iter()
            .filter(|e| &e.scope == scope && e.user_id == Some(user_id) && before.is_none_or(|b| e.id < b))
            .cloned()
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.id));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn login_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<StatBucket>> {
        let t = self.lock();
        let width = bucket.millis();
        let mut buckets: BTreeMap<i64, (u64, BTreeSet<Uuid>)> = BTreeMap::new();
        let hits = t
            .events
            .iter()
            .filter(|e| &e.scope == scope && e.outcome == Outcome::Success && from <= e.at && e.at < to);
        for e in hits {
            let start = crate::clock::to_unix_ms(e.at).div_euclid(width) * width;
            let entry = buckets.entry(start).or_default();
            entry.0 += 1;
            entry.1.extend(e.user_id);
        }
        Ok(buckets
            .into_iter()
            .map(|(start, (logins, users))| StatBucket {
                start: crate::clock::from_unix_ms(start),
                logins,
                users: users.len() as u64,
            })
            .collect())
    }

    // ---- admin web page

    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.lock().audit.push(entry.clone());
        Ok(())
    }

    async fn list_audit(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let t = self.lock();
        let mut out: Vec<AuditEntry> =
            t.audit.iter().filter(|a| before.is_none_or(|b| a.id < b)).cloned().collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.id));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn scope_figures(&self, now: OffsetDateTime) -> StoreResult<Vec<ScopeFigures>> {
        let t = self.lock();
        let mut figures: BTreeMap<Scope, ScopeFigures> = BTreeMap::new();
        let blank = |scope: &Scope| ScopeFigures {
            scope: scope.clone(),
            users: 0,
            active_users: 0,
            live_sessions: 0,
            api_keys: 0,
        };
        for r in t.users.values() {
            let f = figures.entry(r.user.scope.clone()).or_insert_with(|| blank(&r.user.scope));
            f.users += 1;
            f.active_users += u64::from(r.user.active);
        }
        for (k, _) in &t.api_keys {
            let f = figures.entry(k.scope.clone()).or_insert_with(|| blank(&k.scope));
            f.api_keys += u64::from(k.revoked_at.is_none());
        }
        for r in t.sessions.values() {
            if r.session.is_valid_at(now)
                && let Some(f) = figures.get_mut(&r.session.scope)
            {
                f.live_sessions += 1;
            }
        }
        Ok(figures.into_values().collect())
    }

    async fn outcome_stats(
        &self,
        scope: &Scope,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> StoreResult<Vec<OutcomeCount>> {
        let t = self.lock();
        let width = bucket.millis();
        let mut counts: BTreeMap<(i64, &'static str), u64> = BTreeMap::new();
        for e in t.events.iter().filter(|e| &e.scope == scope && from <= e.at && e.at < to) {
            let start = crate::clock::to_unix_ms(e.at).div_euclid(width) * width;
            *counts.entry((start, e.outcome.as_str())).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .filter_map(|((start, outcome), count)| {
                Some(OutcomeCount {
                    start: crate::clock::from_unix_ms(start),
                    outcome: Outcome::from_stored(outcome)?,
                    count,
                })
            })
            .collect())
    }

    // ---- maintenance

    async fn enqueue(&self, e: &Enqueue<'_>) -> StoreResult<()> {
        let mut t = self.lock();
        if let Some(record) = e.user {
            let user = &record.user;
            t.check_unique(&user.scope, user.username.as_ref(), user.email.as_ref(), None)?;
            if t.users.contains_key(&user.id) {
                return Err(StoreError::Other("duplicate user id".into()));
            }
        }
        if e.messages.iter().any(|m| t.outbox.contains_key(&m.id)) {
            return Err(StoreError::Other("duplicate outbox id".into()));
        }
        // Checked before anything changes: the code's user must exist (or come with it).
        if let Some(code) = e.code {
            let comes_with = e.user.is_some_and(|r| r.user.id == code.user_id && r.user.scope == code.scope);
            if !comes_with && t.user(&code.scope, code.user_id).is_none() {
                return Err(StoreError::Other("code for a user that does not exist".into()));
            }
            if t.codes.iter().any(|c| c.code_hash == code.code_hash) {
                return Err(StoreError::Other("duplicate code hash".into()));
            }
        }
        if let Some(record) = e.user {
            t.users.insert(record.user.id, record.clone());
        }
        if let Some(code) = e.code {
            t.insert_code(code)?;
        }
        for m in e.messages {
            t.outbox.insert(m.id, m.clone());
        }
        Ok(())
    }

    async fn update_user_enqueue(
        &self,
        scope: &Scope,
        id: Uuid,
        patch: &UserPatch,
        at: OffsetDateTime,
        e: &Enqueue<'_>,
    ) -> StoreResult<Option<User>> {
        let mut t = self.lock();
        let Some(current) = t.user(scope, id) else {
            return Ok(None);
        };
        let mut user = current.user.clone();
        let effects = patch.apply(&mut user, at);
        t.check_unique(scope, user.username.as_ref(), user.email.as_ref(), Some(id))?;
        if e.messages.iter().any(|m| t.outbox.contains_key(&m.id)) {
            return Err(StoreError::Other("duplicate outbox id".into()));
        }
        if let Some(code) = e.code {
            if code.scope != *scope || code.user_id != id {
                return Err(StoreError::Other("code for another user".into()));
            }
            if t.codes.iter().any(|c| c.code_hash == code.code_hash) {
                return Err(StoreError::Other("duplicate code hash".into()));
            }
        }
        if effects.end_sessions {
            t.end_sessions(scope, id, None);
        }
        if effects.void_codes {
            t.void_codes(scope, id);
        }
        if let Some(record) = t.user_mut(scope, id) {
            record.user = user.clone();
        }
        if let Some(code) = e.code {
            t.insert_code(code)?;
        }
        for m in e.messages {
            t.outbox.insert(m.id, m.clone());
        }
        Ok(Some(user))
    }

    async fn outbox_claim(&self, claim: &OutboxClaim) -> StoreResult<Vec<OutboxMessage>> {
        let mut t = self.lock();
        let mut due: Vec<(OffsetDateTime, Uuid)> = t
            .outbox
            .values()
            .filter(|m| m.kind == claim.kind && !claim.skip_lanes.contains(&m.lane))
            .filter(|m| match m.state {
                OutboxState::Queued => m.next_attempt_at <= claim.now,
                OutboxState::Sending => m.lease_until.is_some_and(|l| l < claim.now),
                _ => false,
            })
            .map(|m| (m.next_attempt_at, m.id))
            .collect();
        due.sort();
        due.truncate(claim.limit as usize);
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Some(m) = t.outbox.get_mut(&id) else { continue };
            m.state = OutboxState::Sending;
            m.attempts = m.attempts.saturating_add(1);
            m.lease_until = Some(claim.lease_until);
            m.lease_owner = Some(claim.owner.clone());
            out.push(m.clone());
        }
        Ok(out)
    }

    async fn outbox_update(&self, id: Uuid, owner: &str, update: &OutboxUpdate) -> StoreResult<bool> {
        let mut t = self.lock();
        let Some(m) = t.outbox.get_mut(&id) else { return Ok(false) };
        let held = matches!(m.state, OutboxState::Sending | OutboxState::InDoubt)
            && m.lease_owner.as_deref() == Some(owner);
        if !held {
            return Ok(false);
        }
        m.state = update.state;
        if matches!(update.state, OutboxState::Queued | OutboxState::Sent | OutboxState::Failed) {
            m.lease_until = None;
            m.lease_owner = None;
        }
        if update.state == OutboxState::Sent {
            m.sent_at = Some(update.at);
        }
        if let Some(next) = update.next_attempt_at {
            m.next_attempt_at = next;
        }
        if let Some(error) = &update.error {
            m.last_error = Some(error.clone());
        }
        if let Some(payload) = &update.payload {
            m.payload = payload.clone();
        }
        let (scope, user_id) = (m.scope.clone(), m.user_id);
        if let (Some(c), Some(user_id)) = (update.user_confirmation, user_id)
            && let Some(r) = t.user_mut(&scope, user_id)
            && !r.user.confirmed
        {
            r.user.confirmation = Some(c);
        }
        Ok(true)
    }

    async fn outbox_purge_sent(
        &self,
        kind: crate::outbox::OutboxKind,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut t = self.lock();
        let old: Vec<Uuid> = t
            .outbox
            .values()
            .filter(|m| {
                m.kind == kind && m.state == OutboxState::Sent && m.sent_at.is_some_and(|s| s < before)
            })
            .map(|m| m.id)
            .take(limit as usize)
            .collect();
        for id in &old {
            t.outbox.remove(id);
        }
        Ok(old.len() as u64)
    }

    async fn outbox_retry(&self, id: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        let mut t = self.lock();
        let webhook = |m: &OutboxMessage| {
            m.kind == crate::outbox::OutboxKind::Webhook
                && matches!(m.state, OutboxState::Queued | OutboxState::Failed)
        };
        match t.outbox.get_mut(&id) {
            Some(m) if m.state == OutboxState::InDoubt || webhook(m) => {
                if m.kind == crate::outbox::OutboxKind::Webhook {
                    m.attempts = 0;
                }
                m.state = OutboxState::Queued;
                m.next_attempt_at = now;
                m.lease_until = None;
                m.lease_owner = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        let t = self.lock();
        let mut stats = OutboxStats::default();
        for m in t.outbox.values() {
            stats.add(m.state, 1);
            if matches!(m.state, OutboxState::Queued | OutboxState::Sending) {
                stats.oldest_pending_at =
                    Some(stats.oldest_pending_at.map_or(m.created_at, |o| o.min(m.created_at)));
            }
        }
        Ok(stats)
    }

    async fn outbox_lane(
        &self,
        kind: crate::outbox::OutboxKind,
        lane: &str,
        state: Option<OutboxState>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let t = self.lock();
        let upper = before.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(t.outbox
            .range((Bound::Unbounded, upper))
            .rev()
            .map(|(_, m)| m)
            .filter(|m| m.kind == kind && m.lane == lane && state.is_none_or(|s| m.state == s))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn outbox_lane_stats(
        &self,
        kind: crate::outbox::OutboxKind,
    ) -> StoreResult<Vec<(String, OutboxStats)>> {
        let t = self.lock();
        let mut lanes: BTreeMap<String, OutboxStats> = BTreeMap::new();
        for m in t.outbox.values().filter(|m| m.kind == kind) {
            let stats = lanes.entry(m.lane.clone()).or_default();
            stats.add(m.state, 1);
            if matches!(m.state, OutboxState::Queued | OutboxState::Sending) {
                stats.oldest_pending_at =
                    Some(stats.oldest_pending_at.map_or(m.created_at, |o| o.min(m.created_at)));
            }
        }
        Ok(lanes.into_iter().collect())
    }

    async fn insert_webhook(&self, endpoint: &crate::webhook::WebhookEndpoint) -> StoreResult<()> {
        let mut t = self.lock();
        if t.webhooks.contains_key(&endpoint.id) {
            return Err(StoreError::Other("duplicate webhook id".into()));
        }
        t.webhooks.insert(endpoint.id, endpoint.clone());
        Ok(())
    }

    async fn list_webhooks(
        &self,
        scope: Option<&Scope>,
    ) -> StoreResult<Vec<crate::webhook::WebhookEndpoint>> {
        let t = self.lock();
        Ok(t.webhooks.values().filter(|w| scope.is_none_or(|s| &w.scope == s)).cloned().collect())
    }

    async fn update_webhook(&self, endpoint: &crate::webhook::WebhookEndpoint) -> StoreResult<bool> {
        let mut t = self.lock();
        match t.webhooks.get_mut(&endpoint.id) {
            Some(w) if w.scope == endpoint.scope => {
                let created_at = w.created_at;
                *w = crate::webhook::WebhookEndpoint { created_at, ..endpoint.clone() };
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool> {
        let mut t = self.lock();
        if t.webhooks.get(&id).is_none_or(|w| &w.scope != scope) {
            return Ok(false);
        }
        t.webhooks.remove(&id);
        let lane = id.to_string();
        t.outbox.retain(|_, m| !(m.kind == crate::outbox::OutboxKind::Webhook && m.lane == lane));
        Ok(true)
    }

    async fn outbox_list(&self, before: Option<Uuid>, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        let t = self.lock();
        let upper = before.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(t.outbox
            .range((Bound::Unbounded, upper))
            .rev()
            .take(limit as usize)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn count_valid_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        Ok(self.lock().sessions.values().filter(|r| r.session.is_valid_at(now)).count() as u64)
    }

    async fn sweep_expired(&self, now: OffsetDateTime, batch: u32) -> StoreResult<u64> {
        let mut t = self.lock();
        let batch = batch as usize;
        let dead: Vec<TokenHash> = t
            .sessions
            .iter()
            .filter(|(_, r)| !r.session.is_valid_at(now))
            .map(|(h, _)| *h)
            .take(batch)
            .collect();
        for hash in &dead {
            t.sessions.remove(hash);
        }
        let mut codes_gone = 0usize;
        t.codes.retain(|c| {
            if now >= c.expires_at && codes_gone < batch {
                codes_gone += 1;
                false
            } else {
                true
            }
        });
        let stale: Vec<(Scope, String)> = t
            .throttles
            .iter()
            .filter(|(_, s)| now >= s.expires_at)
            .map(|(k, _)| k.clone())
            .take(batch)
            .collect();
        for key in &stale {
            t.throttles.remove(key);
        }
        let flows: Vec<TokenHash> =
            t.flows.iter().filter(|(_, f)| now >= f.expires_at).map(|(h, _)| *h).take(batch).collect();
        for hash in &flows {
            t.flows.remove(hash);
        }
        Ok((dead.len() + codes_gone + stale.len() + flows.len()) as u64)
    }

    // ---- throttling counters

    async fn throttle_get(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ThrottleState>> {
        let t = self.lock();
        Ok(t.throttles.get(&(scope.clone(), key.to_owned())).filter(|s| now < s.expires_at).copied())
    }

    async fn throttle_hit(
        &self,
        scope: &Scope,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> StoreResult<ThrottleState> {
        Ok(self.lock().throttle_hit(scope, key, now, window))
    }

    async fn throttle_clear(&self, scope: &Scope, key: &str) -> StoreResult<()> {
        self.lock().throttles.remove(&(scope.clone(), key.to_owned()));
        Ok(())
    }

    async fn throttle_update(
        &self,
        scope: &Scope,
        update: &ThrottleUpdate<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ThrottleState>> {
        let mut t = self.lock();
        for key in update.clear {
            t.throttles.remove(&(scope.clone(), (*key).to_owned()));
        }
        for key in update.undo {
            let id = (scope.clone(), (*key).to_owned());
            match t.throttles.get_mut(&id) {
                Some(state) if now < state.expires_at && state.failures > 1 => state.failures -= 1,
                Some(_) => {
                    t.throttles.remove(&id);
                }
                None => {}
            }
        }
        Ok(update.hit.iter().map(|(key, window)| t.throttle_hit(scope, key, now, *window)).collect())
    }

    // ---- export and import

    async fn export_users(&self, after: Option<(Scope, Uuid)>, limit: u32) -> StoreResult<Vec<ExportedUser>> {
        let t = self.lock();
        let cursor = after.as_ref().map(|(s, id)| (s.as_str(), *id));
        let mut page: Vec<&UserRecord> =
            t.users.values().filter(|r| cursor.is_none_or(|c| key(r) > c)).collect();
        let limit = limit as usize;
        if page.len() > limit {
            // Only the first `limit` need sorting.
            page.select_nth_unstable_by_key(limit, |r| key(r));
            page.truncate(limit);
        }
        page.sort_unstable_by_key(|r| key(r));
        let mut links: HashMap<(&str, Uuid), Vec<Identity>> =
            page.iter().map(|r| (key(r), Vec::new())).collect();
        for identity in &t.identities {
            if let Some(list) = links.get_mut(&(identity.scope.as_str(), identity.user_id)) {
                list.push(identity.clone());
            }
        }
        Ok(page
            .into_iter()
            .map(|r| {
                let mut identities = links.remove(&key(r)).unwrap_or_default();
                identities.sort_by(|a, b| a.provider.cmp(&b.provider));
                let k = (r.user.scope.clone(), r.user.id);
                let totp = t.totp.get(&k).cloned();
                // This store keeps no time per code: the set is as old as the TOTP.
                let made = totp.as_ref().map_or(r.user.created_at, |t| t.created_at);
                let mut recovery_codes: Vec<crate::store::RecoveryCodeHash> = t
                    .recovery_codes
                    .get(&k)
                    .into_iter()
                    .flatten()
                    .map(|&hash| crate::store::RecoveryCodeHash { hash, created_at: made })
                    .collect();
                recovery_codes.sort_by_key(|c| c.hash.0);
                let passkeys = t
                    .passkeys
                    .iter()
                    .filter(|p| p.scope == r.user.scope && p.user_id == r.user.id)
                    .cloned()
                    .collect();
                ExportedUser {
                    record: r.clone(),
                    identities,
                    mfa: crate::store::ExportedMfa { totp, recovery_codes, passkeys },
                }
            })
            .collect())
    }

    async fn import_users(&self, users: &[ExportedUser]) -> StoreResult<ImportOutcome> {
        let mut t = self.lock();
        // What the store holds of the batch's keys. Ids are map lookups; a user that exists
        // is left alone whatever its keys, so only the others' keys are looked for, in one
        // pass over each table (and none when there are none, as on a re-import).
        let mut taken = ImportTaken::default();
        let mut wanted_usernames = HashSet::new();
        let mut wanted_emails = HashSet::new();
        let mut wanted_links = HashSet::new();
        for exported in users {
            let u = &exported.record.user;
            let scope = u.scope.as_str();
            if t.user(&u.scope, u.id).is_some() {
                taken.ids.insert((scope.to_owned(), u.id));
                continue;
            }
            wanted_usernames.extend(u.username.as_ref().map(|n| (scope, n.key())));
            wanted_emails.extend(u.email.as_ref().map(|e| (scope, e.key())));
            for link in &exported.identities {
                wanted_links.insert((scope, link.provider.as_str(), link.client_id.as_str()));
            }
        }
        if !(wanted_usernames.is_empty() && wanted_emails.is_empty()) {
            for record in t.users.values() {
                let u = &record.user;
                let scope = u.scope.as_str();
                if let Some(key) = u.username.as_ref().map(Username::key)
                    && wanted_usernames.contains(&(scope, key))
                {
                    taken.usernames.insert((scope.to_owned(), key.to_owned()));
                }
                if let Some(key) = u.email.as_ref().map(Email::key)
                    && wanted_emails.contains(&(scope, key))
                {
                    taken.emails.insert((scope.to_owned(), key.to_owned()));
                }
            }
        }
        if !wanted_links.is_empty() {
            for i in &t.identities {
                let k = (i.scope.as_str(), i.provider.as_str(), i.client_id.as_str());
                if wanted_links.contains(&k) {
                    taken.identities.insert((k.0.to_owned(), k.1.to_owned(), k.2.to_owned()));
                }
            }
        }
        let plan = taken.plan(users);
        let chosen = plan.to_insert();
        // Users are kept by id alone here: an id another scope uses cannot be stored. Refused
        // before anything changes, so the batch stays all-or-nothing.
        if let Some(clash) =
            chosen.iter().map(|&i| &users[i].record.user).find(|u| t.users.contains_key(&u.id))
        {
            return Err(StoreError::Other(format!("user id {} already exists in another scope", clash.id)));
        }
        for &i in &chosen {
            let exported = &users[i];
            t.users.insert(exported.record.user.id, exported.record.clone());
            t.identities.extend(exported.links());
            let u = &exported.record.user;
            let k = (u.scope.clone(), u.id);
            if let Some(totp) = &exported.mfa.totp {
                t.totp.insert(k.clone(), totp.clone());
            }
            if !exported.mfa.recovery_codes.is_empty() {
                t.recovery_codes.insert(k, exported.mfa.recovery_codes.iter().map(|c| c.hash).collect());
            }
            for p in &exported.mfa.passkeys {
                if !t
                    .passkeys
                    .iter()
                    .any(|q| q.id == p.id || (q.scope == u.scope && q.credential_id == p.credential_id))
                {
                    t.passkeys.push(PasskeyRecord { scope: u.scope.clone(), user_id: u.id, ..p.clone() });
                }
            }
        }
        Ok(plan.outcome(users))
    }
}
