//! Linked identities at external providers: linking, reading, listing, unlinking, and
//! changes to a link's access token ([`TokenUpdate`], [`Expiry`]).
//!
//! Provider tokens are sealed by the server secret (when one is configured) on their way
//! to the store and opened on their way back ([`Hallpass::seal_identity`],
//! [`Hallpass::open_identity`]); the associated data binds each to its row and to which
//! token it is (scope, user, provider, `access`/`refresh`). Tokens stored in the clear
//! before a secret was configured are still read as they are.

use super::Hallpass;
use crate::ServerSecret;
use crate::error::{Error, Result};
use crate::model::*;
use crate::types::*;
use crate::webhook::{Event, EventType};
use time::{Duration, OffsetDateTime};

/// When a provider's access token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At this instant.
    At(OffsetDateTime),
    /// This many seconds from now.
    In(i64),
}

/// A change to a provider link's token.
#[derive(Debug, Clone, Default)]
pub struct TokenUpdate {
    /// New access token; `Some(None)` clears it.
    pub access_token: Option<Option<String>>,
    /// New expiry; `Some(None)` clears it.
    pub expiry: Option<Option<Expiry>>,
    /// New refresh token; `Some(None)` clears it.
    pub refresh_token: Option<Option<String>>,
}

/// What a sealed provider token is bound to.
fn token_aad(identity: &Identity, which: &str) -> Vec<u8> {
    format!(
        "identity\0{}\0{}\0{}\0{which}",
        identity.scope.as_str(),
        identity.user_id,
        identity.provider.as_str()
    )
    .into_bytes()
}

/// The identity as it is to be stored: its tokens sealed by `secret` (unchanged without
/// one). `hallpass import` seals what it reads with this, as the service does.
pub fn seal_identity_with(secret: Option<&ServerSecret>, identity: &Identity) -> Identity {
    let mut sealed = identity.clone();
    if let Some(secret) = secret {
        sealed.access_token =
            identity.access_token.as_deref().map(|t| secret.seal_text(&token_aad(identity, "access"), t));
        sealed.refresh_token =
            identity.refresh_token.as_deref().map(|t| secret.seal_text(&token_aad(identity, "refresh"), t));
    }
    sealed
}

/// A stored identity with its tokens opened by `secret`, and whether any sealed token
/// could not be opened (no secret, or another key): such a token reads as absent, with a
/// warning in the log. Tokens stored in the clear are read as they are.
pub fn open_identity_with(secret: Option<&ServerSecret>, mut identity: Identity) -> (Identity, bool) {
    let mut lost = false;
    for (which, slot) in [("access", 0), ("refresh", 1)] {
        let aad = token_aad(&identity, which);
        let token = if slot == 0 { &mut identity.access_token } else { &mut identity.refresh_token };
        let Some(text) = token.as_deref() else { continue };
        if !crate::server_secret::is_sealed_text(text) {
            continue;
        }
        let opened = match secret {
            Some(secret) => secret.open_text(&aad, text).map_err(|e| e.to_string()),
            None => Err("no server secret is configured".to_owned()),
        };
        *token = match opened {
            Ok(plain) => Some(plain),
            Err(why) => {
                tracing::warn!(provider = %identity.provider.as_str(), user_id = %identity.user_id,
                    "a sealed provider {which} token could not be opened: {why}");
                lost = true;
                None
            }
        };
    }
    (identity, lost)
}

impl Hallpass {
    /// The identity as it is to be stored: tokens sealed when a server secret is set.
    pub(crate) fn seal_identity(&self, identity: &Identity) -> Identity {
        seal_identity_with(self.server_secret.as_ref(), identity)
    }

    /// A stored identity with its tokens opened (see [`open_identity_with`]): the link
    /// itself stays usable for logins when a token cannot be opened.
    pub(crate) fn open_identity(&self, identity: Identity) -> Identity {
        open_identity_with(self.server_secret.as_ref(), identity).0
    }

    /// Stores a link, its tokens sealed.
    pub(crate) async fn store_identity(&self, identity: &Identity) -> Result<()> {
        Ok(self.store.upsert_identity(&self.seal_identity(identity), &[]).await?)
    }

    /// Stores a new link (or a link of the user's to another subject of the provider),
    /// with its `identity.linked` event in the same transaction.
    pub(crate) async fn store_new_identity(&self, user: &User, identity: &Identity) -> Result<()> {
        let event = Event::new(EventType::IdentityLinked, identity.updated_at, Some(user.id))
            .with_user(user)
            .with_str("provider", Some(identity.provider.as_str()))
            .with_str("subject", Some(identity.client_id.as_str()));
        let rows = self.webhook_rows(&identity.scope, event).await;
        self.store.upsert_identity(&self.seal_identity(identity), &rows).await?;
        self.webhooks_queued(&rows);
        Ok(())
    }

    fn apply_token(&self, identity: &mut Identity, update: TokenUpdate) -> Result<()> {
        if let Some(t) = update.access_token {
            if let Some(t) = &t {
                crate::types::check_access_token(t)?;
            }
            identity.access_token = t;
        }
        if let Some(t) = update.refresh_token {
            if let Some(t) = &t {
                crate::types::check_refresh_token(t)?;
            }
            identity.refresh_token = t;
        }
        if let Some(e) = update.expiry {
            identity.access_token_expiry = match e {
                None => None,
                Some(Expiry::At(t)) => Some(t),
                Some(Expiry::In(secs)) => {
                    if !(-1_000_000_000..=1_000_000_000).contains(&secs) {
                        return Err(Error::invalid("expires_in", "is out of range"));
                    }
                    Some(self.now() + Duration::seconds(secs))
                }
            };
        }
        Ok(())
    }

    /// Links a user to a provider identity (replacing the user's earlier link to the same
    /// provider).
    pub async fn link_provider(
        &self,
        scope: &Scope,
        r: &UserRef,
        provider: ProviderName,
        client_id: ClientId,
        update: TokenUpdate,
    ) -> Result<Identity> {
        let user = self.resolve(scope, r).await?.user;
        let now = self.now();
        let existing = self.store.get_identity(scope, user.id, &provider).await?;
        let mut identity = Identity {
            user_id: user.id,
            scope: scope.clone(),
            provider,
            client_id,
            access_token: None,
            access_token_expiry: None,
            refresh_token: None,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        self.apply_token(&mut identity, update)?;
        if existing.is_some_and(|e| e.client_id == identity.client_id) {
            self.store_identity(&identity).await?;
        } else {
            self.store_new_identity(&user, &identity).await?;
        }
        Ok(identity)
    }

    /// Changes the token or expiry of a link.
    pub async fn update_provider(
        &self,
        scope: &Scope,
        r: &UserRef,
        provider: &ProviderName,
        update: TokenUpdate,
    ) -> Result<Identity> {
        let user = self.resolve(scope, r).await?.user;
        let stored =
            self.store.get_identity(scope, user.id, provider).await?.ok_or(Error::ProviderNotLinked)?;
        let mut identity = self.open_identity(stored);
        self.apply_token(&mut identity, update)?;
        identity.updated_at = self.now();
        self.store_identity(&identity).await?;
        Ok(identity)
    }

    /// A user's link to a provider.
    pub async fn get_provider(
        &self,
        scope: &Scope,
        r: &UserRef,
        provider: &ProviderName,
    ) -> Result<Identity> {
        let user = self.resolve(scope, r).await?.user;
        let stored =
            self.store.get_identity(scope, user.id, provider).await?.ok_or(Error::ProviderNotLinked)?;
        Ok(self.open_identity(stored))
    }

    /// A user's provider links.
    pub async fn list_providers(&self, scope: &Scope, r: &UserRef) -> Result<Vec<Identity>> {
        let user = self.resolve(scope, r).await?.user;
        let stored = self.store.list_identities(scope, user.id).await?;
        Ok(stored.into_iter().map(|i| self.open_identity(i)).collect())
    }

    /// Removes a user's link to a provider; `LastLoginMethod` when the user has no
    /// password, no other link and no passkey (the user could no longer log in at all).
    pub async fn unlink_provider(&self, scope: &Scope, r: &UserRef, provider: &ProviderName) -> Result<()> {
        let resolved = self.resolve(scope, r).await?;
        let (user, has_password) = (resolved.user, resolved.password_hash.is_some());
        let links = self.store.list_identities(scope, user.id).await?;
        let others = links.iter().filter(|i| &i.provider != provider).count();
        if links.iter().any(|i| &i.provider == provider)
            && others == 0
            && !has_password
            && self.store.list_passkeys(scope, user.id).await?.is_empty()
        {
            return Err(Error::LastLoginMethod);
        }
        let event = Event::new(EventType::IdentityUnlinked, self.now(), Some(user.id))
            .with_user(&user)
            .with_str("provider", Some(provider.as_str()));
        let rows = self.webhook_rows(scope, event).await;
        if self.store.delete_identity(scope, user.id, provider, &rows).await? {
            self.webhooks_queued(&rows);
            Ok(())
        } else {
            Err(Error::ProviderNotLinked)
        }
    }
}
