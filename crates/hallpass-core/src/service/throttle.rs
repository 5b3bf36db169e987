//! Login throttling: the counters one password login attempt counts against
//! ([`AttemptKeys`], named by `account_key`, `device_key` and `ip_key`), reserving its places
//! in them before the password is verified (`Hallpass::reserve`), and what a good login
//! does with them afterwards (`finish_login` in [`super::login`] settles its [`AttemptKeys`]).
//! The budgets themselves are [`crate::ThrottleSettings`]; the store only counts.

use super::Hallpass;
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::DeviceToken;
use crate::store::ThrottleUpdate;
use crate::types::*;
use time::OffsetDateTime;
use uuid::Uuid;

/// The throttling counters one password login attempt counts against (see
/// [`crate::ThrottleSettings`]).
#[derive(Debug)]
pub(super) struct AttemptKeys {
    /// Where this attempt's failure counts: the account's counter for unknown devices,
    /// `acct:<user id>` (or `acct:u:#<sha256 of the username key>` / `acct:e:#...` for an
    /// unknown user: what was typed may be a password, never kept in clear), or for a
    /// device known to the user its own counter, `dev:#<sha256 of account and device>`.
    pub(super) account: String,
    /// `ip:<canonical client address>` when the backend reported one, unless the device
    /// is known (a known device is held only by its own counter).
    pub(super) ip: Option<String>,
    /// The device token presented has logged in as this user before.
    pub(super) known_device: bool,
}

/// `prefix` + `value`, or, when that would exceed 200 bytes (a `client.ip` is whatever
/// the backend sent), `prefix` + `#` + the SHA-256 of `value` in hex, so every backend's
/// key column holds it.
fn bounded_key(prefix: &str, value: &str) -> String {
    if prefix.len() + value.len() <= 200 {
        return format!("{prefix}{value}");
    }
    hashed_key(prefix, value)
}

/// The counter of an account's failures from unknown devices: by user id, or by the
/// normalised login (hashed) when no user has it, so unknown users cost and behave alike.
pub(super) fn account_key(login: &UserRef, user_id: Option<Uuid>) -> String {
    match (user_id, login) {
        (Some(id), _) | (None, &UserRef::Id(id)) => format!("acct:{id}"),
        (None, UserRef::Username(key)) => hashed_key("acct:u:", key),
        (None, UserRef::Email(key)) => hashed_key("acct:e:", key),
    }
}

/// A key of one device for one account (`prefix` + the SHA-256 of both): `known:` marks a
/// device that has logged in as the account, `dev:` counts that device's failures.
pub(super) fn device_key(prefix: &str, account: &str, device: &DeviceToken) -> String {
    hashed_key(prefix, &format!("{account}|{}", device.expose()))
}

/// The counter of a client address: one per IPv4 address (an IPv4-mapped IPv6 address
/// is its IPv4 address), one per IPv6 network of `v6_prefix` bits (an attacker usually
/// holds a whole /64). What does not parse as an address counts as the text it is.
/// `None` for an empty address.
fn ip_key(ip: &str, v6_prefix: u8) -> Option<String> {
    let ip = ip.trim();
    if ip.is_empty() {
        return None;
    }
    let bare = ip.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(ip);
    Some(match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let bits = v6_prefix.min(128);
                let mask = u128::MAX.checked_shl(u32::from(128 - bits)).unwrap_or(0);
                format!("ip:{}/{bits}", std::net::Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
        Err(_) => bounded_key("ip:", ip),
    })
}

/// `prefix` and the SHA-256 of `value`: for what a person typed as a login that matched no
/// user, which may be a mistyped password and must not sit in the database in clear.
pub(super) fn hashed_key(prefix: &str, value: &str) -> String {
    format!("{prefix}#{}", crate::secret::TokenHash::of(value).to_hex())
}

impl Hallpass {
    /// The throttling counters a password login attempt counts against: for a device
    /// token that has logged in as this account before, the device's own counter alone;
    /// else the account's counter for unknown devices and, when the backend reported one,
    /// the client IP's. Reads whether the device is known (one read, made whenever a
    /// device is presented, for known and unknown logins alike).
    pub(super) async fn attempt_keys(
        &self,
        scope: &Scope,
        account: String,
        client: &ClientInfo,
        device: Option<&DeviceToken>,
    ) -> Result<AttemptKeys> {
        let policy = &self.scope_settings(scope).throttle;
        if policy.enabled
            && let Some(device) = device
        {
            let marker = device_key("known:", &account, device);
            if self.store.throttle_get(scope, &marker, self.now()).await?.is_some() {
                return Ok(AttemptKeys {
                    account: device_key("dev:", &account, device),
                    ip: None,
                    known_device: true,
                });
            }
        }
        let ip = client.ip.as_deref().and_then(|ip| ip_key(ip, policy.ipv6_prefix));
        Ok(AttemptKeys { account, ip, known_device: false })
    }

    /// Takes this attempt's place in the budget of each of its counters before anything
    /// is checked (one atomic store call), so that parallel attempts can never exceed a
    /// budget; an attempt beyond one gives every place back and answers
    /// [`Error::RateLimited`]. A kept place is the attempt's failure unless the login
    /// succeeds and `finish_login` settles it.
    pub(super) async fn reserve(&self, scope: &Scope, keys: &AttemptKeys) -> Result<()> {
        let policy = &self.scope_settings(scope).throttle;
        if !policy.enabled {
            return Ok(());
        }
        let mut hit = vec![(keys.account.as_str(), policy.account_window)];
        if let Some(ip) = &keys.ip {
            hit.push((ip.as_str(), policy.ip_window));
        }
        let now = self.now();
        let states = self
            .store
            .throttle_update(scope, &ThrottleUpdate { hit: &hit, ..Default::default() }, now)
            .await?;
        let mut until: Option<OffsetDateTime> = None;
        if let Some(Err(at)) = states.first().map(|state| policy.account_admits(state, now)) {
            until = until.max(Some(at));
        }
        if keys.ip.is_some()
            && let Some(Err(at)) = states.get(1).map(|state| policy.ip_admits(state))
        {
            until = until.max(Some(at));
        }
        let Some(until) = until else { return Ok(()) };
        self.give_back(scope, keys).await?;
        let wait = (until - now).whole_milliseconds().max(0);
        let retry_after_secs = u64::try_from((wait + 999) / 1000).unwrap_or(u64::MAX).max(1);
        Err(Error::RateLimited { retry_after_secs })
    }

    /// Gives back the places [`Hallpass::reserve`] took for an attempt whose password was
    /// never checked (beyond a budget, or the check itself failed: an overloaded hashing
    /// pool, an unavailable store), so only checked attempts count.
    pub(super) async fn give_back(&self, scope: &Scope, keys: &AttemptKeys) -> Result<()> {
        if !self.scope_settings(scope).throttle.enabled {
            return Ok(());
        }
        let undo: Vec<&str> =
            [Some(keys.account.as_str()), keys.ip.as_deref()].into_iter().flatten().collect();
        let update = ThrottleUpdate { undo: &undo, ..Default::default() };
        self.store.throttle_update(scope, &update, self.now()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_one_ip_counter_whatever_its_form() {
        let key = |ip: &str, bits: u8| ip_key(ip, bits).unwrap_or_default();
        assert_eq!(key("203.0.113.5", 64), "ip:203.0.113.5");
        assert_eq!(key("::ffff:203.0.113.5", 64), "ip:203.0.113.5");
        assert_eq!(key(" [::ffff:cb00:7105] ", 128), "ip:203.0.113.5");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 64), "ip:2001:db8:1:2::/64");
        assert_eq!(key("2001:DB8:1:2::9", 64), "ip:2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 128), "ip:2001:db8:1:2:3:4:5:6/128");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 48), "ip:2001:db8:1::/48");
        assert_eq!(key("2001:db8::1", 0), "ip:::/0");
        assert_eq!(key("not an address", 64), "ip:not an address");
        assert_eq!(ip_key("  ", 64), None);
    }
}
