//! Linked identities at external providers: linking, reading, listing, unlinking, and
//! changes to a link's access token ([`TokenUpdate`], [`Expiry`]).

use super::Hallpass;
use crate::error::{Error, Result};
use crate::model::*;
use crate::types::*;
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
}

impl Hallpass {
    fn apply_token(&self, identity: &mut Identity, update: TokenUpdate) -> Result<()> {
        if let Some(t) = update.access_token {
            if let Some(t) = &t {
                crate::types::check_access_token(t)?;
            }
            identity.access_token = t;
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
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        self.apply_token(&mut identity, update)?;
        self.store.upsert_identity(&identity).await?;
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
        let mut identity =
            self.store.get_identity(scope, user.id, provider).await?.ok_or(Error::ProviderNotLinked)?;
        self.apply_token(&mut identity, update)?;
        identity.updated_at = self.now();
        self.store.upsert_identity(&identity).await?;
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
        self.store.get_identity(scope, user.id, provider).await?.ok_or(Error::ProviderNotLinked)
    }

    /// A user's provider links.
    pub async fn list_providers(&self, scope: &Scope, r: &UserRef) -> Result<Vec<Identity>> {
        let user = self.resolve(scope, r).await?.user;
        Ok(self.store.list_identities(scope, user.id).await?)
    }

    /// Removes a user's link to a provider.
    pub async fn unlink_provider(&self, scope: &Scope, r: &UserRef, provider: &ProviderName) -> Result<()> {
        let user = self.resolve(scope, r).await?.user;
        if self.store.delete_identity(scope, user.id, provider).await? {
            Ok(())
        } else {
            Err(Error::ProviderNotLinked)
        }
    }
}
