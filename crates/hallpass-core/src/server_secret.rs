//! The server secret: one 256-bit key that seals data hallpass must keep but must not keep
//! in the clear (provider access and refresh tokens; later TOTP secrets), and keys the
//! hashes of low-entropy codes (the mailed sign-in codes, [`ServerSecret::code_hash`]) so
//! that a reader of the database alone cannot try all million of them.
//!
//! [`ServerSecret::seal`] encrypts with XChaCha20-Poly1305 under a fresh random 192-bit
//! nonce (random nonces of that size never collide in practice, so no counter has to be
//! kept across processes), and binds the ciphertext to *associated data* the caller names:
//! the row it belongs to (for a provider token: scope, user id, provider and which token).
//! A sealed value copied to another row, or swapped between the access and refresh token,
//! does not open.
//!
//! Layout of a sealed value: `[format = 1][key id][nonce: 24 bytes][ciphertext + tag]`. The
//! key id is the first byte of a SHA-256 of the key: opening under another key is told
//! apart from tampering ([`OpenError::OtherKey`]), and a later rotation can keep old keys
//! by id. [`ServerSecret::seal_text`] renders that as `hp1.` + unpadded base64url, for text
//! columns.
//!
//! The key itself comes from the operator (the server crate reads `HALLPASS_SECRET_KEY`,
//! `secret_key_file`, or a generated file); this module does no I/O. `Debug` prints `***`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

use crate::secret::TokenHash;

/// The format byte of a sealed value.
const FORMAT: u8 = 1;
/// The text prefix of [`ServerSecret::seal_text`].
pub const SEALED_TEXT_PREFIX: &str = "hp1.";
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 2 + NONCE_LEN;

/// The server's sealing key.
#[derive(Clone)]
pub struct ServerSecret {
    cipher: XChaCha20Poly1305,
    key_id: u8,
    /// The HMAC key of [`ServerSecret::code_hash`], derived from the key (never the key
    /// itself: one key, two uses, each with its own subkey).
    mac_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerSecret(id {}, ***)", self.key_id)
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64.
    #[error("the secret key is not base64")]
    NotBase64,
    /// Not 32 bytes.
    #[error("the secret key must be 32 bytes (44 characters of base64), not {0} bytes")]
    WrongLength(usize),
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed value of a format this build knows.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed under another key (the key was changed).
    #[error("sealed under another server secret key")]
    OtherKey,
    /// The tag does not verify: altered, or sealed for other associated data.
    #[error("the sealed value was altered or belongs to another record")]
    Tampered,
}

impl ServerSecret {
    /// The secret of 32 key bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let key_id =
            Sha256::new().chain_update(b"hallpass server secret id\0").chain_update(bytes).finalize()[0];
        let mac_key = Zeroizing::new(
            Sha256::new()
                .chain_update(b"hallpass server secret code mac\0")
                .chain_update(bytes)
                .finalize()
                .into(),
        );
        Self { cipher: XChaCha20Poly1305::new(bytes.into()), key_id, mac_key }
    }

    /// HMAC-SHA256 of `message` under a subkey of this secret: what storage keeps of a
    /// short code (a 6-digit sign-in code), so the stored hash cannot be brute-forced
    /// without the key. Compare results with [`TokenHash::ct_eq`] or by exact lookup.
    pub fn code_hash(&self, message: &str) -> TokenHash {
        use hmac::{KeyInit as _, Mac as _};
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.mac_key.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(message.as_bytes());
        let digest: [u8; 32] = mac.finalize().into_bytes().into();
        TokenHash::from_slice(&digest).expect("SHA-256 is 32 bytes")
    }

    /// The secret written as base64 (standard or URL-safe alphabet, padded or not;
    /// surrounding whitespace ignored), as `HALLPASS_SECRET_KEY` and key files hold it.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE.decode(text))
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| KeyError::NotBase64)?,
        );
        let key: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(Self::from_bytes(key))
    }

    /// A fresh random key, as the base64 text [`ServerSecret::from_base64`] reads.
    pub fn generate_base64() -> Zeroizing<String> {
        let bytes = Zeroizing::new(crate::secret::random_bytes());
        Zeroizing::new(STANDARD.encode(*bytes))
    }

    /// This key's id (the byte stored in every value it seals).
    pub fn key_id(&self) -> u8 {
        self.key_id
    }

    /// Seals `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random number generator failed");
        let nonce_arr = XNonce::from(nonce);
        let ciphertext = self
            .cipher
            .encrypt(&nonce_arr, Payload { msg: plaintext, aad })
            .expect("XChaCha20-Poly1305 seals any message of a size that fits in memory");
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.push(FORMAT);
        out.push(self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value [`ServerSecret::seal`] made with this key and the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if sealed.len() < HEADER_LEN + 16 || sealed[0] != FORMAT {
            return Err(OpenError::Malformed);
        }
        if sealed[1] != self.key_id {
            return Err(OpenError::OtherKey);
        }
        let nonce: [u8; NONCE_LEN] = sealed[2..HEADER_LEN].try_into().map_err(|_| OpenError::Malformed)?;
        self.cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: &sealed[HEADER_LEN..], aad })
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Tampered)
    }

    /// [`ServerSecret::seal`] of a text, as text: `hp1.` + unpadded base64url.
    pub fn seal_text(&self, aad: &[u8], plaintext: &str) -> String {
        format!("{SEALED_TEXT_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.seal(aad, plaintext.as_bytes())))
    }

    /// Opens what [`ServerSecret::seal_text`] made.
    pub fn open_text(&self, aad: &[u8], sealed: &str) -> Result<String, OpenError> {
        let body = sealed.strip_prefix(SEALED_TEXT_PREFIX).ok_or(OpenError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| OpenError::Malformed)?;
        let plain = self.open(aad, &bytes)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError::Malformed)
    }
}

/// Whether a stored text is a sealed value (as opposed to a token stored in the clear
/// before a secret was configured).
pub fn is_sealed_text(s: &str) -> bool {
    s.starts_with(SEALED_TEXT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> ServerSecret {
        ServerSecret::from_bytes(&[b; 32])
    }

    #[test]
    fn seal_opens_with_the_same_key_and_aad_only() {
        let k = key(7);
        let sealed = k.seal(b"row-1", b"access token");
        assert_eq!(k.open(b"row-1", &sealed).expect("opens").as_slice(), b"access token");
        assert_eq!(k.open(b"row-2", &sealed), Err(OpenError::Tampered), "bound to its row");
        let mut flipped = sealed.clone();
        *flipped.last_mut().expect("non-empty") ^= 1;
        assert_eq!(k.open(b"row-1", &flipped), Err(OpenError::Tampered));
        assert_eq!(key(8).open(b"row-1", &sealed), Err(OpenError::OtherKey));
        assert_eq!(k.open(b"row-1", &sealed[..10]), Err(OpenError::Malformed));
    }

    #[test]
    fn nonces_are_fresh_and_text_round_trips() {
        let k = key(1);
        let (a, b) = (k.seal_text(b"x", "same"), k.seal_text(b"x", "same"));
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(is_sealed_text(&a) && !a.contains("same"));
        assert_eq!(k.open_text(b"x", &a).as_deref(), Ok("same"));
        assert_eq!(k.open_text(b"x", "plain"), Err(OpenError::Malformed));
    }

    #[test]
    fn code_hashes_are_keyed() {
        let (a, b) = (key(1), key(2));
        let m = "email-code:a:user:123456";
        assert!(a.code_hash(m).ct_eq(&a.code_hash(m)), "deterministic under one key");
        assert!(!a.code_hash(m).ct_eq(&b.code_hash(m)), "another key, another hash");
        assert!(!a.code_hash(m).ct_eq(&TokenHash::of(m)), "not the plain SHA-256");
        assert!(!a.code_hash(m).ct_eq(&a.code_hash("email-code:a:user:123457")));
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes() {
        let text = ServerSecret::generate_base64();
        let k = ServerSecret::from_base64(&text).expect("parses");
        assert!(format!("{k:?}").contains("***"));
        assert_eq!(ServerSecret::from_base64("c2hvcnQ=").err(), Some(KeyError::WrongLength(5)));
        assert_eq!(ServerSecret::from_base64("***").err(), Some(KeyError::NotBase64));
    }
}
