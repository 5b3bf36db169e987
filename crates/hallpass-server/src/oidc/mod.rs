//! Sign-in through identity providers (OpenID Connect by discovery, plain OAuth 2.0 by
//! explicit endpoints), the server's side: the providers of each scope as configured
//! ([`ProviderSpec`], checked when the configuration is read), and the registry the HTTP
//! handlers use ([`Oidc`]), with each provider's discovery document and keys cached
//! ([`client`]). What to do with a validated identity (find, link or create the user, log
//! in) is the core's (`hallpass_core::service::ProviderIdentity`); the flow records are
//! the core's flows (`hallpass_core::flow`).

pub mod client;

use crate::config::{Config, NewUsersConfig, OidcProviderConfig};
use anyhow::{Context, bail};
use hallpass_core::service::{NewUsers, OidcPolicy};
use hallpass_core::{ProviderName, Scope};
use std::collections::HashMap;
use std::sync::Arc;
use url::Url;

/// How a sign-in lives between `start` and the callback.
pub const STATE_TTL: time::Duration = time::Duration::minutes(10);
/// How long the callback's one-time code may wait for `exchange`.
pub const CODE_TTL: time::Duration = time::Duration::seconds(60);

/// How a provider is reached.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one value per configured provider
pub enum ProviderKind {
    /// OpenID Connect: everything from discovery; identity from the ID token.
    Oidc {
        /// The issuer URL exactly as configured (it must equal the ID tokens' `iss`).
        issuer: String,
    },
    /// Plain OAuth 2.0: identity from the userinfo endpoint.
    OAuth2 {
        /// Where the browser signs in.
        authorization_endpoint: Url,
        /// Where the code is exchanged.
        token_endpoint: Url,
        /// Where the claims are read.
        userinfo_endpoint: Url,
        /// The userinfo field holding the stable id.
        subject_claim: String,
    },
}

/// One provider of one scope, as configured and checked.
#[derive(Clone)]
pub struct ProviderSpec {
    /// The scope.
    pub scope: Scope,
    /// The provider's name in that scope.
    pub name: ProviderName,
    /// Discovery or explicit endpoints.
    pub kind: ProviderKind,
    /// hallpass's client id at the provider.
    pub client_id: String,
    /// Its client secret (from the file or `client_secret_file`).
    pub client_secret: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Where a sign-in may end (compared without query and fragment).
    pub return_to: Vec<Url>,
    /// Unknown identities and email linking.
    pub policy: OidcPolicy,
    /// The claim a new user's username comes from.
    pub username_claim: String,
}

impl std::fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("scope", &self.scope)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish_non_exhaustive()
    }
}

/// An absolute http(s) URL, or an error naming the key.
fn http_url(at: &str, key: &str, s: &str) -> anyhow::Result<Url> {
    let url = Url::parse(s).with_context(|| format!("{at}: `{key}` is not a URL: {s:?}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("{at}: `{key}` must be an http:// or https:// URL with a host, not {s:?}");
    }
    Ok(url)
}

/// A URL without query and fragment: what `return_to` is compared by.
pub fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

impl ProviderSpec {
    /// Every provider of every scope in `config`, checked: each error names the table and
    /// the key and says what to write instead. Reads each `client_secret_file`.
    pub fn all(config: &Config) -> anyhow::Result<Vec<ProviderSpec>> {
        let mut specs = Vec::new();
        for (scope_name, scope_config) in &config.scopes {
            let Some(providers) = &scope_config.oidc else { continue };
            let scope = Scope::parse(scope_name)
                .map_err(|e| anyhow::anyhow!("configuration: [scopes.{scope_name}]: {e}"))?;
            for (name, p) in providers {
                specs.push(Self::one(&scope, name, p)?);
            }
        }
        if !specs.is_empty() {
            let Some(public) = &config.public_url else {
                bail!(
                    "configuration: identity providers are configured, but `public_url` (HALLPASS_PUBLIC_URL) is \
                     not: the providers send browsers back to {{public_url}}/v1/oidc/{{provider}}/callback"
                );
            };
            http_url("configuration", "public_url", public)?;
        }
        Ok(specs)
    }

    fn one(scope: &Scope, name: &str, p: &OidcProviderConfig) -> anyhow::Result<ProviderSpec> {
        let at = format!("configuration: [scopes.{}.oidc.{name}]", scope.as_str());
        let name = ProviderName::parse(name).map_err(|e| anyhow::anyhow!("{at}: the provider name {e}"))?;
        let explicit = [&p.authorization_endpoint, &p.token_endpoint, &p.userinfo_endpoint];
        let kind = match (&p.issuer, explicit.iter().filter(|e| e.is_some()).count()) {
            (Some(issuer), 0) => {
                http_url(&at, "issuer", issuer)?;
                if p.subject_claim.is_some() {
                    bail!(
                        "{at}: `subject_claim` is for plain OAuth 2.0 providers; an OpenID issuer's subject is `sub`"
                    );
                }
                ProviderKind::Oidc { issuer: issuer.clone() }
            }
            (None, 3) => ProviderKind::OAuth2 {
                authorization_endpoint: http_url(
                    &at,
                    "authorization_endpoint",
                    explicit[0].as_deref().unwrap_or_default(),
                )?,
                token_endpoint: http_url(&at, "token_endpoint", explicit[1].as_deref().unwrap_or_default())?,
                userinfo_endpoint: http_url(
                    &at,
                    "userinfo_endpoint",
                    explicit[2].as_deref().unwrap_or_default(),
                )?,
                subject_claim: p.subject_claim.clone().unwrap_or_else(|| "sub".into()),
            },
            (Some(_), _) => bail!(
                "{at}: give either `issuer` (OpenID Connect, by discovery) or the three endpoints \
                 (plain OAuth 2.0), not both"
            ),
            (None, 0) => bail!(
                "{at}: give `issuer` (OpenID Connect, by discovery) or `authorization_endpoint`, \
                 `token_endpoint` and `userinfo_endpoint` (plain OAuth 2.0)"
            ),
            (None, _) => bail!(
                "{at}: a plain OAuth 2.0 provider needs all of `authorization_endpoint`, `token_endpoint` \
                 and `userinfo_endpoint`"
            ),
        };
        let client_id = match p.client_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => bail!("{at}: `client_id` is required (the id of hallpass's client at the provider)"),
        };
        let client_secret = match (&p.client_secret, &p.client_secret_file) {
            (Some(s), None) => s.trim().to_owned(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .with_context(|| format!("{at}: cannot read `client_secret_file` {file:?}"))?
                .trim()
                .to_owned(),
            (Some(_), Some(_)) => bail!("{at}: give `client_secret` or `client_secret_file`, not both"),
            (None, None) => bail!("{at}: `client_secret` or `client_secret_file` is required"),
        };
        if client_secret.is_empty() {
            bail!("{at}: the client secret is empty");
        }
        let return_to = match &p.return_to {
            Some(list) if !list.is_empty() => {
                list.iter().map(|u| http_url(&at, "return_to", u)).collect::<anyhow::Result<Vec<_>>>()?
            }
            _ => bail!(
                "{at}: `return_to` is required: the exact URLs of your application a sign-in may end at, \
                 e.g. [\"https://app.example.com/auth/done\"]"
            ),
        };
        let default_scopes = match kind {
            ProviderKind::Oidc { .. } => vec!["openid".into(), "email".into(), "profile".into()],
            ProviderKind::OAuth2 { .. } => Vec::new(),
        };
        let scopes = p.scopes.clone().unwrap_or(default_scopes);
        if matches!(kind, ProviderKind::Oidc { .. }) && !scopes.iter().any(|s| s == "openid") {
            bail!("{at}: `scopes` must include \"openid\" for an OpenID Connect provider");
        }
        Ok(ProviderSpec {
            scope: scope.clone(),
            name,
            kind,
            client_id,
            client_secret,
            scopes,
            return_to,
            policy: OidcPolicy {
                new_users: match p.new_users.unwrap_or_default() {
                    NewUsersConfig::Create => NewUsers::Create,
                    NewUsersConfig::Refuse => NewUsers::Refuse,
                },
                link_by_verified_email: p.link_by_verified_email.unwrap_or(false),
            },
            username_claim: p.username_claim.clone().unwrap_or_else(|| "preferred_username".into()),
        })
    }

    /// Whether `return_to` is one of the allowed URLs (query and fragment ignored).
    pub fn allows_return_to(&self, return_to: &Url) -> bool {
        let wanted = without_query(return_to);
        self.return_to.iter().any(|u| without_query(u) == wanted)
    }
}

/// The providers of every scope, and the HTTP client they are reached with.
#[derive(Debug, Default)]
pub struct Oidc {
    public_url: Option<Url>,
    providers: HashMap<(Scope, ProviderName), Arc<client::Provider>>,
}

impl Oidc {
    /// The providers `config` describes (none: an empty registry).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let specs = ProviderSpec::all(config)?;
        let public_url = config.public_url.as_deref().map(Url::parse).transpose()?;
        Self::new(public_url, specs)
    }

    /// A registry of `specs`, with callbacks under `public_url`.
    pub fn new(public_url: Option<Url>, specs: Vec<ProviderSpec>) -> anyhow::Result<Self> {
        if specs.is_empty() {
            return Ok(Self::default());
        }
        let http = client::http_client()?;
        let providers = specs
            .into_iter()
            .map(|spec| {
                ((spec.scope.clone(), spec.name.clone()), Arc::new(client::Provider::new(spec, http.clone())))
            })
            .collect();
        Ok(Self { public_url, providers })
    }

    /// Whether any provider is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The provider `name` of `scope`.
    pub fn provider(&self, scope: &Scope, name: &ProviderName) -> Option<&Arc<client::Provider>> {
        self.providers.get(&(scope.clone(), name.clone()))
    }

    /// The scopes that have a provider called `name` (the public callback knows only the
    /// name until the state tells the scope).
    pub fn scopes_with(&self, name: &ProviderName) -> Vec<Scope> {
        self.providers.keys().filter(|(_, n)| n == name).map(|(s, _)| s.clone()).collect()
    }

    /// Where the provider sends the browser back: `{public_url}/v1/oidc/{provider}/callback`.
    pub fn redirect_uri(&self, name: &ProviderName) -> Option<String> {
        let base = self.public_url.as_ref()?;
        Some(format!("{}/v1/oidc/{}/callback", base.as_str().trim_end_matches('/'), name.as_str()))
    }
}
