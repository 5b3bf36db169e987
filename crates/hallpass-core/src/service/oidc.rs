//! Sign-in through an identity provider, once the server has done the redirect dance and
//! validated what the provider said ([`ProviderIdentity`]): find the user by the
//! identity's (provider, subject), or link by a verified email where the scope allows it,
//! or create the user (or refuse, [`NewUsers::Refuse`]); then log in as a password login
//! does (`finish_login`: inactive users refused, event `oidc:<provider>`). The explicit
//! link flow ([`Hallpass::oidc_link`]) attaches the identity to a known user instead.
//!
//! Identities are keyed by (provider, subject), never by email alone: an email links only
//! when the provider says it is verified and the scope turned `link_by_verified_email` on.

use super::Hallpass;
use super::login::LoginResult;
use super::users::NewUser;
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::DeviceToken;
use crate::types::*;
use time::OffsetDateTime;
use uuid::Uuid;

/// Whether a first sign-in of an unknown identity creates a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NewUsers {
    /// Create the user from the identity's claims (the default).
    #[default]
    Create,
    /// Refuse with [`Error::IdentityUnknown`].
    Refuse,
}

/// A provider's sign-in rules in a scope.
#[derive(Debug, Clone, Copy, Default)]
pub struct OidcPolicy {
    /// Unknown identities: create or refuse.
    pub new_users: NewUsers,
    /// Link a first sign-in to the user with the same email, when the provider says the
    /// email is verified.
    pub link_by_verified_email: bool,
}

/// What a provider vouched for, after the server validated it.
#[derive(Clone)]
pub struct ProviderIdentity {
    /// The provider (as configured in the scope).
    pub provider: ProviderName,
    /// The user's stable id at the provider (`sub`, or the configured subject claim).
    pub subject: ClientId,
    /// The email the provider gave, if any.
    pub email: Option<String>,
    /// Whether the provider says that email is verified.
    pub email_verified: bool,
    /// The preferred username from the claims, if any.
    pub username: Option<String>,
    /// The provider's access token.
    pub access_token: Option<String>,
    /// When it expires.
    pub access_token_expiry: Option<OffsetDateTime>,
    /// The provider's refresh token.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for ProviderIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderIdentity")
            .field("provider", &self.provider)
            .field("subject", &self.subject)
            .field("email_verified", &self.email_verified)
            .finish_non_exhaustive()
    }
}

impl ProviderIdentity {
    fn link_for(
        &self,
        scope: &Scope,
        user_id: Uuid,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Identity {
        Identity {
            user_id,
            scope: scope.clone(),
            provider: self.provider.clone(),
            client_id: self.subject.clone(),
            access_token: self.access_token.clone(),
            access_token_expiry: self.access_token_expiry,
            refresh_token: self.refresh_token.clone(),
            created_at,
            updated_at: now,
        }
    }
}

/// How many suffixed usernames a new user tries before going without one.
const NAME_TRIES: u32 = 20;

impl Hallpass {
    /// Records a failed provider sign-in (`oidc:<provider>`) with its reason.
    pub async fn record_oidc_failure(
        &self,
        scope: &Scope,
        provider: &ProviderName,
        user_id: Option<Uuid>,
        outcome: Outcome,
        client: &ClientInfo,
    ) -> Result<()> {
        self.record_failure(scope, user_id, &LoginMethod::Oidc(provider.clone()), outcome, client).await
    }

    /// Signs in with a provider identity: the linked user, else (per `policy`) the user
    /// with the same verified email, else a new user; then a session exactly as a password
    /// login makes one, with `login.oauth` filled. Refusals: [`Error::IdentityUnknown`]
    /// (where new users are refused), [`Error::UserInactive`]; both are recorded.
    pub async fn oidc_login(
        &self,
        scope: &Scope,
        who: ProviderIdentity,
        policy: OidcPolicy,
        data: JsonObject,
        client: ClientInfo,
        device: Option<DeviceToken>,
    ) -> Result<LoginResult> {
        check_json_object("data", &data)?;
        self.settings.limits.check_session_data(&data)?;
        let now = self.now();
        let mut refresh_token = who.refresh_token.clone();
        let user = match self.store.find_identity(scope, &who.provider, who.subject.as_str()).await? {
            Some(link) => {
                let user = self.resolve(scope, &UserRef::Id(link.user_id)).await?.user;
                // The provider's newest tokens replace the stored ones; a refresh token is
                // kept when the provider sent no new one (most send one only at consent).
                let mut fresh = who.link_for(scope, user.id, link.created_at, now);
                if fresh.refresh_token.is_none() {
                    fresh.refresh_token = self.open_identity(link).refresh_token;
                    refresh_token.clone_from(&fresh.refresh_token);
                }
                self.store_identity(&fresh).await?;
                user
            }
            None => {
                let by_email = match (&who.email, policy.link_by_verified_email && who.email_verified) {
                    (Some(email), true) => match Email::parse(email) {
                        Ok(email) => {
                            self.store.find_user(scope, &UserRef::Email(email.key().to_owned())).await?
                        }
                        Err(_) => None,
                    },
                    _ => None,
                };
                let user = match by_email {
                    Some(record) => record.user,
                    None if policy.new_users == NewUsers::Refuse => {
                        self.record_oidc_failure(
                            scope,
                            &who.provider,
                            None,
                            Outcome::IdentityUnknown,
                            &client,
                        )
                        .await?;
                        return Err(Error::IdentityUnknown);
                    }
                    None => self.create_oidc_user(scope, &who).await?,
                };
                match self.store_new_identity(&user, &who.link_for(scope, user.id, now, now)).await {
                    Ok(()) => user,
                    // A concurrent first sign-in of the same identity linked it first: use
                    // that user (the one just made, if any, stays without a link).
                    Err(Error::IdentityTaken) => {
                        let link = self
                            .store
                            .find_identity(scope, &who.provider, who.subject.as_str())
                            .await?
                            .ok_or(Error::IdentityTaken)?;
                        self.resolve(scope, &UserRef::Id(link.user_id)).await?.user
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let oauth = OAuthInfo {
            provider: who.provider.as_str().to_owned(),
            client_id: who.subject.as_str().to_owned(),
            access_token: who.access_token.clone(),
            access_token_expiry: who.access_token_expiry,
            access_token_expired: who.access_token_expiry.is_some_and(|e| e <= now),
            refresh_token,
        };
        self.finish_login(
            scope,
            user,
            LoginMethod::Oidc(who.provider.clone()),
            Some(oauth),
            data,
            client,
            device,
            None,
        )
        .await
    }

    /// Links a provider identity to a known user (the link flow: the sign-in was started
    /// with that user's session). [`Error::IdentityTaken`] when another user holds it.
    pub async fn oidc_link(&self, scope: &Scope, user_id: Uuid, who: ProviderIdentity) -> Result<Identity> {
        let user = self.resolve(scope, &UserRef::Id(user_id)).await?.user;
        let now = self.now();
        if let Some(link) = self.store.find_identity(scope, &who.provider, who.subject.as_str()).await?
            && link.user_id != user.id
        {
            return Err(Error::IdentityTaken);
        }
        let existing = self.store.get_identity(scope, user.id, &who.provider).await?;
        let created_at = existing.as_ref().map_or(now, |i| i.created_at);
        let identity = who.link_for(scope, user.id, created_at, now);
        if existing.is_some_and(|e| e.client_id == identity.client_id) {
            self.store_identity(&identity).await?;
        } else {
            self.store_new_identity(&user, &identity).await?;
        }
        Ok(identity)
    }

    /// A new user from the identity's claims: the username claim (or the email's local
    /// part, or `<provider>-<subject>`) with `-2`, `-3`... when taken; the email when it is
    /// free (a taken email is left off: linking by email is only ever explicit).
    async fn create_oidc_user(&self, scope: &Scope, who: &ProviderIdentity) -> Result<User> {
        let mut email = who.email.as_deref().and_then(|e| Email::parse(e).ok());
        if let Some(e) = &email
            && self.store.find_user(scope, &UserRef::Email(e.key().to_owned())).await?.is_some()
        {
            email = None;
        }
        let base = who
            .username
            .clone()
            .filter(|u| Username::parse(u).is_ok())
            .or_else(|| {
                who.email
                    .as_deref()
                    .and_then(|e| e.split('@').next())
                    .map(str::to_owned)
                    .filter(|u| Username::parse(u).is_ok())
            })
            .unwrap_or_else(|| {
                let subject: String =
                    who.subject.as_str().chars().filter(|c| c.is_ascii_alphanumeric()).take(40).collect();
                format!("{}-{subject}", who.provider.as_str())
            });
        for n in 1..=NAME_TRIES {
            let candidate = if n == 1 { base.clone() } else { format!("{}-{n}", truncate(&base, 56)) };
            let Ok(username) = Username::parse(&candidate) else { continue };
            let new = NewUser {
                username: Some(username),
                email: email.clone(),
                password: None,
                group: None,
                extra: None,
                active: None,
            };
            match self.register(scope, new).await {
                Ok(user) => return Ok(user),
                Err(Error::UsernameTaken) => continue,
                // Taken between the check and the insert: go without the email.
                Err(Error::EmailTaken) if email.is_some() => {
                    email = None;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::UsernameTaken)
    }
}

/// At most `n` characters of `s`.
fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
