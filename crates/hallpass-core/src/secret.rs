//! Secrets the server hands out once and keeps only as SHA-256: session tokens, API keys
//! and one-time codes. Each is 256 bits from the operating system's CSPRNG, rendered as
//! unpadded base64url behind a short prefix that says what it is (so secret scanners and
//! people can tell them apart). `Debug` prints `***`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The SHA-256 of a secret: what storage keeps and looks up by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

/// A digest is already uniform: it hashes as its first eight bytes, one `write_u64`
/// (which [`TokenHashBuilder`] takes as the hash itself).
impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Hashes a [`TokenHash`] key with no further mixing: the per-process caches look one up
/// on every request. Only keys read back from storage under a presented secret (or a
/// change to one) ever enter those maps, so nobody can choose colliding keys; other
/// values written to this hasher are folded in with a multiply, enough for a map.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenHashBuilder;

impl std::hash::BuildHasher for TokenHashBuilder {
    type Hasher = TokenHasher;
    fn build_hasher(&self) -> TokenHasher {
        TokenHasher(0)
    }
}

/// The hasher of [`TokenHashBuilder`].
#[derive(Debug, Clone, Copy)]
pub struct TokenHasher(u64);

impl std::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 =
            if self.0 == 0 { n } else { (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95) };
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

impl TokenHash {
    /// Hashes a secret's text.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }
    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Rebuilds a stored digest; `None` unless it is 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        Some(Self(b.try_into().ok()?))
    }
    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
    /// A digest from 64 hex digits (either case); `None` for any other text.
    pub fn from_hex(hex: &str) -> Option<Self> {
        decode_hex(hex).map(Self)
    }
    /// Compares two digests in constant time.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not a credential, but it is still nobody's business in a log.
        f.write_str("TokenHash(***)")
    }
}

/// `N` bytes from exactly `2 * N` hex digits (either case); `None` for anything else.
/// Reads byte by byte: any text is safe to give it (it never slices a string).
pub(crate) fn decode_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(bytes)
}

/// 32 random bytes from the operating system.
pub fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The OS RNG failing is unrecoverable: no secret may be made without it.
    getrandom::fill(&mut b).expect("the operating system's random number generator failed");
    b
}

macro_rules! secret_type {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The prefix every value of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random value.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, URL_SAFE_NO_PAD.encode(random_bytes())))
            }
            /// Wraps a value a client presented. Anything is accepted: a value that was
            /// never issued simply matches no stored hash.
            pub fn from_presented(s: &str) -> Self {
                Self(s.trim().to_owned())
            }
            /// The text to hand to the client, once.
            pub fn expose(&self) -> &str {
                &self.0
            }
            /// What storage keeps.
            pub fn hash(&self) -> TokenHash {
                TokenHash::of(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(***)", stringify!($name))
            }
        }
    };
}

secret_type!(
    /// A session token: the bearer credential of a login.
    SessionToken,
    "hps_"
);
secret_type!(
    /// An API key: how an application backend authenticates to one scope.
    ApiKeySecret,
    "hpk_"
);
secret_type!(
    /// A one-time code (password reset, email confirmation).
    Code,
    "hpc_"
);
secret_type!(
    /// The handle of a flow (`crate::flow`): an OIDC `state`, a one-time exchange code.
    FlowHandle,
    "hpf_"
);
secret_type!(
    /// A device token: what a successful login gives the application to keep for that
    /// browser (a long-lived cookie) and send back on later logins, so that login
    /// throttling tells the owner's devices from unknown ones. Not a credential: it grants
    /// no access, only a throttling budget of its own.
    DeviceToken,
    "hpd_"
);

impl DeviceToken {
    /// A device token as the client sent it back, if it has the shape hallpass issues
    /// (`hpd_` and 43 base64url characters); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix(Self::PREFIX)?;
        let shaped =
            body.len() == 43 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_redacted() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("hps_"));
        assert_eq!(a.expose().len(), 4 + 43);
        assert_eq!(format!("{a:?}"), "SessionToken(***)");
        assert!(a.hash().ct_eq(&SessionToken::from_presented(a.expose()).hash()));
        assert!(!a.hash().ct_eq(&b.hash()));
    }
}
