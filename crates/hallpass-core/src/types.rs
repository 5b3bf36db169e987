//! Typed inputs. Each is built by a fallible constructor at the edge; past the edge a value
//! of one of these types is valid, so the service never re-checks it.

use std::fmt;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Why an input was refused: which field, and a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    /// The request field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidInput {
    /// An error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Whether a username may not hold `c` because nobody can see it, it changes how the text
/// around it is shown, or its meaning is not fixed yet. After the PRECIS username profile
/// (RFC 8265 on RFC 8264's IdentifierClass), which disallows these too:
/// - every character of general category Other: controls (Cc), format characters (Cf:
///   zero-width space and joiners, BOM, soft hyphen, the bidi marks, embeddings, overrides
///   and isolates, tag characters, ...), surrogates (Cs), private use (Co), and unassigned
///   code points and noncharacters (Cn, whose normalisation a later Unicode may change);
/// - every Default_Ignorable_Code_Point, which adds what is invisible but not Cf:
///   variation selectors, the combining grapheme joiner, Hangul fillers, Khmer inherent
///   vowels, Mongolian free variation selectors.
///
/// The data is ICU4X's (`icu_properties`), the Unicode version the `idna` crate maps email
/// domains with.
fn is_invisible_or_unassigned(c: char) -> bool {
    use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
    use icu_properties::{CodePointMapData, CodePointSetData};
    GeneralCategoryGroup::Other.contains(CodePointMapData::<GeneralCategory>::new().get(c))
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// Characters a URL client rewrites in a path segment, so a username holding one would not
/// reach hallpass unchanged in `/v1/users/{ref}/...` (WHATWG URL): '/' and '\' (also a
/// separator in `http:` URLs) end the segment, '?' and '#' the path, and '%' starts a
/// percent-escape the server decodes ("%41" arrives as "A").
const PATH_REWRITTEN: [char; 5] = ['/', '\\', '?', '#', '%'];

/// A short lower-case name: `[a-z0-9][a-z0-9_-]{0,62}` (scopes and provider names).
fn check_name(field: &'static str, s: &str) -> Result<(), InvalidInput> {
    let mut chars = s.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok_first && ok_rest && s.len() <= 63 {
        Ok(())
    } else {
        Err(InvalidInput::new(
            field,
            "must be 1 to 63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
        ))
    }
}

macro_rules! name_type {
    ($(#[$m:meta])* $name:ident, $field:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses a name, refusing anything outside `[a-z0-9][a-z0-9_-]{0,62}`.
            pub fn parse(s: &str) -> Result<Self, InvalidInput> {
                check_name($field, s)?;
                Ok(Self(s.to_owned()))
            }
            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An application (tenant). Everything belongs to exactly one scope.
    Scope,
    "scope"
);
name_type!(
    /// The name of an OAuth/OIDC provider a user identity is linked through.
    ProviderName,
    "provider"
);

impl Scope {
    /// The scope the first API key is created for.
    pub fn default_scope() -> Self {
        Self("default".into())
    }

    /// The name of the internal scope of the admin web page's accounts.
    pub const ADMIN: &'static str = "_admin";

    /// The internal scope whose users are the admins of the web page. Its name starts
    /// with `_`, which [`Scope::parse`] refuses, so no API key, CLI `--scope` or import can
    /// ever name it: only code that asks for it by this constructor reaches it.
    pub fn admin() -> Self {
        Self(Self::ADMIN.into())
    }

    /// Whether this is the internal admin scope.
    pub fn is_admin(&self) -> bool {
        self.0 == Self::ADMIN
    }

    /// Reads a scope name back from storage: what [`Scope::parse`] accepts, and the
    /// internal [`Scope::admin`] scope.
    pub fn from_stored(s: &str) -> Result<Self, InvalidInput> {
        if s == Self::ADMIN { Ok(Self::admin()) } else { Self::parse(s) }
    }
}

/// A username: what was typed (trimmed) for display, and a key for uniqueness
/// (Unicode NFKC, then lower-cased, then NFKC again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Longest accepted username, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Longest key, in bytes: what a ref may hold ([`UserRef::MAX_BYTES`]), so that every
    /// key, given as a ref, finds its own user. Only names of characters with long NFKC
    /// expansions reach it (64 × 'ﷺ', U+FDFA, would make 2,112 bytes).
    pub const MAX_KEY_BYTES: usize = UserRef::MAX_BYTES;

    /// Parses a username. It may not contain '@' (that makes it an email) nor look like a
    /// user id, so a `{ref}` in a path is never ambiguous.
    ///
    /// Nor may it hold what nobody sees or what changes how the text around it is shown
    /// (zero-width characters, BOM, soft hyphen, bidi controls, variation selectors, tag
    /// characters, Hangul fillers: see `is_invisible_or_unassigned`), so "al\u{200B}ice"
    /// cannot sit beside "alice". And it must stand as one URL path segment unchanged: not
    /// "." or ".." (a URL client removes or climbs those: `DELETE /v1/users/./sessions`
    /// would be sent as `DELETE /v1/users/sessions`), and no `/`, `\`, `?`, `#` or `%`.
    ///
    /// Those rules hold for the normalised key too: "alice＠example.com" (a fullwidth '@'),
    /// "a／b", "‥" (NFKC: ".."), "a？b" or a user id in fullwidth digits are refused, as is
    /// a name whose key would begin or end with a space ("¨a": NFKC turns '¨' into a space
    /// and a combining mark). So no username turns into the shape of an email, a path or
    /// an id once normalised, and a key, given as a ref, finds its own user. (Spaces inside
    /// a key are allowed: 'ﷺ' normalises to four Arabic words.)
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let display = s.trim();
        let n = display.chars().count();
        if n == 0 {
            return Err(InvalidInput::new("username", "must not be empty"));
        }
        if n > Self::MAX_CHARS {
            return Err(InvalidInput::new("username", "must be at most 64 characters"));
        }
        if has_control(display) || display.chars().any(char::is_whitespace) {
            return Err(InvalidInput::new("username", "must not contain spaces or control characters"));
        }
        let invisible = || {
            InvalidInput::new(
                "username",
                "must not contain invisible, formatting, private-use or unassigned characters \
                 (zero-width characters, bidi controls, variation selectors, tags, fillers)",
            )
        };
        if display.chars().any(is_invisible_or_unassigned) {
            return Err(invisible());
        }
        let key = Self::key_of(display);
        // Some characters normalise to many ('ﷺ' to 18): the key must still fit a ref, so
        // the user can be named by it (or by anything that normalises to it).
        if key.len() > Self::MAX_KEY_BYTES {
            return Err(InvalidInput::new("username", "is too long once normalised (NFKC)"));
        }
        if key.trim() != key {
            return Err(InvalidInput::new(
                "username",
                "must not begin or end with a character that normalises to a space",
            ));
        }
        for form in [display, key.as_str()] {
            if form.contains('@') {
                return Err(InvalidInput::new("username", "must not contain '@'"));
            }
            if form.contains(PATH_REWRITTEN) {
                return Err(InvalidInput::new(
                    "username",
                    "must not contain '/', '\\', '?', '#' or '%' (a URL client would rewrite them)",
                ));
            }
            if form == "." || form == ".." {
                return Err(InvalidInput::new(
                    "username",
                    "must not be '.' or '..' (a URL client would remove them from a path)",
                ));
            }
            if form.chars().any(|c| c.is_control() || is_invisible_or_unassigned(c)) {
                return Err(invisible());
            }
            if Uuid::parse_str(form).is_ok() {
                return Err(InvalidInput::new("username", "must not have the form of a user id"));
            }
        }
        Ok(Self { display: display.to_owned(), key })
    }

    /// Rebuilds a stored username (already validated when it was stored).
    pub fn from_stored(display: String) -> Self {
        let key = Self::key_of(&display);
        Self { display, key }
    }

    /// The uniqueness key of any string, as stored usernames are compared.
    pub fn key_of(s: &str) -> String {
        let nfkc: String = s.trim().nfkc().collect();
        nfkc.to_lowercase().nfkc().collect()
    }

    /// The username as typed.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The normalised form that is unique within a scope.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// An email address: what was typed (trimmed) for display, and a normalised key: the local
/// part as typed, the domain mapped by UTS #46 (IDNA) to its ASCII form, so
/// "carol@ｅｘａｍｐｌｅ.com" and "carol@Example.COM", or "x@bücher.example" and
/// "x@xn--bcher-kva.example", are one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    key: String,
}

impl Email {
    /// Parses an address (RFC 5321/5322 syntax, at most 254 characters) whose domain is a
    /// valid internationalised domain name (UTS #46 ToASCII, DNS lengths) or an address
    /// literal (`[192.0.2.1]`).
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let display = s.trim();
        if display.len() > 254 {
            return Err(InvalidInput::new("email", "must be at most 254 characters"));
        }
        if has_control(display) || display.chars().any(char::is_whitespace) {
            return Err(InvalidInput::new("email", "is not a valid email address"));
        }
        let parsed = display.parse::<email_address::EmailAddress>();
        if parsed.is_err() || !display.contains('@') {
            return Err(InvalidInput::new("email", "is not a valid email address"));
        }
        let Some(key) = Self::mapped_key(display) else {
            return Err(InvalidInput::new(
                "email",
                "has a domain that is not a valid internationalised domain name (IDNA, UTS #46)",
            ));
        };
        Ok(Self { display: display.to_owned(), key })
    }

    /// The key of an address whose domain maps (UTS #46 ToASCII: case and compatibility
    /// mapping, NFC, Punycode, the bidi and joiner rules, labels of at most 63 and a name of
    /// at most 253 bytes); `None` when it does not. An address literal is lower-cased.
    fn mapped_key(s: &str) -> Option<String> {
        use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
        let (local, domain) = s.trim().rsplit_once('@')?;
        if domain.starts_with('[') && domain.ends_with(']') {
            return Some(format!("{local}@{}", domain.to_lowercase()));
        }
        // No STD3 deny list: the address parser already decided which ASCII a domain may
        // hold; the mapping only decides which spellings are the same domain.
        let ascii = Uts46::new()
            .to_ascii(domain.as_bytes(), AsciiDenyList::EMPTY, Hyphens::Allow, DnsLength::Verify)
            .ok()?;
        Some(format!("{local}@{ascii}"))
    }

    /// Rebuilds a stored address.
    pub fn from_stored(display: String) -> Self {
        let key = Self::key_of(&display);
        Self { display, key }
    }

    /// The normalised form of any string: trimmed, the domain mapped as [`Email::parse`]
    /// maps it; a domain that does not map (no stored address has one) is lower-cased.
    pub fn key_of(s: &str) -> String {
        let s = s.trim();
        if let Some(key) = Self::mapped_key(s) {
            return key;
        }
        match s.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
            None => s.to_owned(),
        }
    }

    /// The address as typed.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The normalised form that is unique within a scope.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A new password that meets the length policy: 8 to 256 characters after Unicode NFKC,
/// never truncated. Its `Debug` prints `***` and its memory is wiped on drop.
///
/// How guessable it is depends on the scope and the user, so the service judges that
/// when the password is set (`Hallpass::check_password_strength`), not this constructor.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Fewest characters accepted.
    pub const MIN_CHARS: usize = 8;
    /// Most characters accepted.
    pub const MAX_CHARS: usize = 256;

    /// Checks a new password against the policy.
    pub fn new(s: &str) -> Result<Self, crate::Error> {
        let nfkc: Zeroizing<String> = Zeroizing::new(s.nfkc().collect());
        let n = nfkc.chars().count();
        if n < Self::MIN_CHARS {
            return Err(crate::Error::WeakPassword(format!(
                "the password must be at least {} characters long",
                Self::MIN_CHARS
            )));
        }
        if n > Self::MAX_CHARS {
            return Err(crate::Error::WeakPassword(format!(
                "the password must be at most {} characters long",
                Self::MAX_CHARS
            )));
        }
        if nfkc.chars().all(|c| c == nfkc.chars().next().unwrap_or(' ')) {
            return Err(crate::Error::WeakPassword("the password must not be one character repeated".into()));
        }
        Ok(Self(nfkc))
    }

    /// A password offered at login: only bounded in size (policy applies when it is set),
    /// normalised like a new one so both forms compare equal.
    pub fn for_login(s: &str) -> Result<Self, InvalidInput> {
        if s.is_empty() {
            return Err(InvalidInput::new("password", "must not be empty"));
        }
        if s.chars().count() > 1024 {
            return Err(InvalidInput::new("password", "is too long"));
        }
        Ok(Self(Zeroizing::new(s.nfkc().collect())))
    }

    /// The bytes to hash.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The normalised password, for the strength estimate.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A user's group: 1 to 64 characters, no control characters. Default `"default"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Group(String);

impl Group {
    /// Parses a group name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let n = s.chars().count();
        if n == 0 || n > 64 || has_control(s) || s.trim() != s {
            return Err(InvalidInput::new(
                "group",
                "must be 1 to 64 characters without control characters or surrounding spaces",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    /// Rebuilds a stored group.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    /// The group a user gets when none is given.
    pub fn default_group() -> Self {
        Self("default".into())
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id a provider gives the user (the OAuth `sub`, or the provider's own user id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Parses a provider's user id: 1 to 255 characters, no control characters.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let n = s.chars().count();
        if n == 0 || n > 255 || has_control(s) {
            return Err(InvalidInput::new(
                "client_id",
                "must be 1 to 255 characters without control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A JSON object the application keeps on a user (`extra`) or a session (`data`).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Refuses JSON that some databases cannot store: a NUL character in any string or key
/// (PostgreSQL's `jsonb` and `text` reject it). Checked at the edge so every backend
/// answers the same 400 instead of a storage error.
pub fn check_json(field: &'static str, value: &serde_json::Value) -> Result<(), InvalidInput> {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(value) {
        return Err(InvalidInput::new(field, "must not contain NUL characters (\\u0000)"));
    }
    Ok(())
}

/// The length in bytes of `object` serialised as compact JSON (as the stores keep it),
/// counted without building the text.
pub fn json_size(object: &JsonObject) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and a map of JSON values always serialises.
    let _ = serde_json::to_writer(&mut count, object);
    count.0
}

/// The longest provider access token accepted, in bytes.
pub const MAX_ACCESS_TOKEN_BYTES: usize = 8192;

/// Refuses a provider access token longer than [`MAX_ACCESS_TOKEN_BYTES`] or holding a
/// control character (NUL included): the check of the API and of `hallpass import`.
pub fn check_access_token(token: &str) -> Result<(), InvalidInput> {
    check_provider_token("access_token", token)
}

/// Checks a provider refresh token as [`check_access_token`] checks an access token.
pub fn check_refresh_token(token: &str) -> Result<(), InvalidInput> {
    check_provider_token("refresh_token", token)
}

fn check_provider_token(field: &'static str, token: &str) -> Result<(), InvalidInput> {
    if token.len() > MAX_ACCESS_TOKEN_BYTES || token.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {MAX_ACCESS_TOKEN_BYTES} bytes without control characters"),
        ));
    }
    Ok(())
}

/// [`check_json`] for an object.
pub fn check_json_object(field: &'static str, object: &JsonObject) -> Result<(), InvalidInput> {
    if object.iter().any(|(k, _)| k.contains('\0')) {
        return Err(InvalidInput::new(field, "must not contain NUL characters (\\u0000)"));
    }
    object.values().try_for_each(|v| check_json(field, v))
}

/// How a request names a user: by id, by username or by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// The user's id.
    Id(Uuid),
    /// The normalised username key.
    Username(String),
    /// The normalised email key.
    Email(String),
}

impl UserRef {
    /// Longest `{ref}` or login accepted, in bytes (an email's limit; every username's key
    /// fits, see [`Username::MAX_KEY_BYTES`]).
    pub const MAX_BYTES: usize = 320;

    /// Reads a `{ref}`: a UUID is an id, a string with '@' an email, anything else a username.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let s = s.trim();
        if s.is_empty() || s.len() > Self::MAX_BYTES || has_control(s) {
            return Err(InvalidInput::new("ref", "must be a user id, username or email"));
        }
        if let Ok(id) = Uuid::parse_str(s) {
            return Ok(Self::Id(id));
        }
        if s.contains('@') {
            Ok(Self::Email(Email::key_of(s)))
        } else {
            Ok(Self::Username(Username::key_of(s)))
        }
    }

    /// Reads the `login` field of a login: an email when it holds '@', else a username.
    pub fn login(s: &str) -> Result<Self, InvalidInput> {
        let s = s.trim();
        if s.is_empty() || s.len() > Self::MAX_BYTES || has_control(s) {
            return Err(InvalidInput::new("login", "must be a username or email"));
        }
        if s.contains('@') {
            Ok(Self::Email(Email::key_of(s)))
        } else {
            Ok(Self::Username(Username::key_of(s)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_names_its_user_as_a_ref() {
        // Found by the `username` fuzz target: a name of characters with long NFKC
        // expansions had a key longer than a ref may be, so it could not name its user.
        let too_long = "\u{FDFA}".repeat(Username::MAX_CHARS);
        assert!(Username::key_of(&too_long).len() > UserRef::MAX_BYTES);
        assert!(Username::parse(&too_long).is_err());
        let longest = Username::parse(&"\u{FDFA}".repeat(9)).unwrap();
        assert!(longest.key().len() <= UserRef::MAX_BYTES);
        assert_eq!(UserRef::parse(longest.key()), Ok(UserRef::Username(longest.key().to_owned())));
        assert_eq!(UserRef::login(longest.key()), Ok(UserRef::Username(longest.key().to_owned())));
    }

    #[test]
    fn usernames_compare_case_insensitively_after_nfkc() {
        let a = Username::parse("Ａlice").unwrap(); // fullwidth A
        let b = Username::parse("ALICE").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Ａlice");
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("a@b").is_err());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse("0190a0e0-0000-7000-8000-000000000000").is_err());
        // The rules hold after normalisation too.
        assert!(Username::parse("alice＠example.com").is_err()); // fullwidth '@'
        assert!(Username::parse("a／b").is_err()); // fullwidth '/'
        assert!(Username::parse("‥").is_err()); // two dot leader: NFKC ".."
        assert!(Username::parse("¨ab").is_err()); // NFKC: a space first, then a combining mark
        assert!(Username::parse("a¨b").is_ok(), "a space inside the key is harmless");
        assert!(Username::parse(&"\u{FDFA}".repeat(9)).is_ok(), "a key of 297 bytes fits a ref");
        assert!(Username::parse("０１９０a0e0-0000-7000-8000-000000000000").is_err()); // fullwidth digits
    }

    #[test]
    fn usernames_refuse_invisible_and_direction_characters() {
        // Issue #12: each of these made a name that looks like "alice" beside "alice".
        let refused = [
            '\u{200B}',  // zero width space (Cf)
            '\u{200C}',  // zero width non-joiner
            '\u{200D}',  // zero width joiner
            '\u{2060}',  // word joiner
            '\u{FEFF}',  // BOM / zero width no-break space
            '\u{00AD}',  // soft hyphen
            '\u{061C}',  // Arabic letter mark
            '\u{200E}',  // left-to-right mark
            '\u{200F}',  // right-to-left mark
            '\u{202A}',  // left-to-right embedding
            '\u{202E}',  // right-to-left override
            '\u{2066}',  // left-to-right isolate
            '\u{2069}',  // pop directional isolate
            '\u{FE00}',  // variation selector 1 (Mn, default ignorable)
            '\u{FE0F}',  // variation selector 16
            '\u{E0100}', // variation selector 17
            '\u{E0001}', // language tag
            '\u{E0041}', // tag latin capital letter A
            '\u{E007F}', // cancel tag
            '\u{115F}',  // Hangul choseong filler (Lo, default ignorable)
            '\u{1160}',  // Hangul jungseong filler
            '\u{3164}',  // Hangul filler
            '\u{FFA0}',  // halfwidth Hangul filler
            '\u{034F}',  // combining grapheme joiner
            '\u{180B}',  // Mongolian free variation selector one
            '\u{180E}',  // Mongolian vowel separator
            '\u{17B4}',  // Khmer vowel inherent AQ
            '\u{1D173}', // musical symbol begin beam (Cf)
            '\u{E000}',  // private use (Co)
            '\u{F0000}', // supplementary private use
            '\u{0378}',  // unassigned (Cn)
            '\u{FFFF}',  // noncharacter
            '\u{10FFFF}',
        ];
        for c in refused {
            for name in [format!("al{c}ice"), format!("{c}alice"), format!("alice{c}")] {
                let e = Username::parse(&name).unwrap_err();
                assert_eq!(e.field, "username");
                assert!(e.reason.contains("invisible"), "{c:?}: {e}");
            }
        }
        // Visible characters of every kind are still names.
        for ok in ["alice", "Ａlice", "zoë", "Zoe\u{308}", "中文", "😀", "ﬁx", "o'brien", "Ⅻ", "x_y-z", "ǅ"]
        {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
    }

    /// How a client that formats `/v1/users/{name}/sessions` into a URL sends it: the path
    /// segments hallpass receives, percent-decoded as axum's `Path` decodes them.
    fn segments_sent(name: &str) -> Vec<String> {
        let url = url::Url::parse(&format!("http://h/v1/users/{name}/sessions")).unwrap();
        url.path_segments().unwrap().map(percent_decoded).collect()
    }

    fn percent_decoded(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex =
                b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match (b[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn usernames_stand_as_one_path_segment_unchanged() {
        // Issue #12: a user named "." made `DELETE /v1/users/./sessions` arrive as
        // `DELETE /v1/users/sessions`, which deletes the user named "sessions".
        assert_eq!(segments_sent("."), ["v1", "users", "sessions"]);
        assert_eq!(segments_sent(".."), ["v1", "sessions"]);
        assert_eq!(segments_sent("a?b"), ["v1", "users", "a"]);
        assert_eq!(segments_sent("%41"), ["v1", "users", "A", "sessions"]);
        let rewritten = [
            ".", "..", "a/b", "a\\b", "a?b", "a#b", "a%41", "%2e", "%2E%2E",
            // ... and the same once normalised (NFKC).
            "．", "．．", "‥", "․", "﹒", "a／b", "a＼b", "a﹨b", "a？b", "a﹖b", "a＃b", "a％b", "℅",
        ];
        for name in rewritten {
            let e = Username::parse(name).unwrap_err();
            assert_eq!(e.field, "username", "{name}");
        }
        // Dots elsewhere are fine: only a whole "." or ".." segment is rewritten.
        for name in
            ["...", ".alice", "alice.", "a..b", "a.b", "a;b", "a&b", "a+b", "a=b", "a:b", "a~b", "a|b"]
        {
            let u = Username::parse(name).unwrap();
            assert_eq!(segments_sent(u.as_str()), ["v1", "users", name, "sessions"]);
            assert_eq!(segments_sent(u.key()), ["v1", "users", u.key(), "sessions"]);
        }
    }

    #[test]
    fn emails_lower_case_the_domain_only() {
        let e = Email::parse("  Bob@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Bob@Example.COM");
        assert_eq!(e.key(), "Bob@example.com");
        assert!(Email::parse("not-an-email").is_err());
        assert!(Email::parse("a@").is_err());
    }

    #[test]
    fn email_domains_are_compared_after_idna_mapping() {
        // Issue #12: each pair registered as two users.
        let fullwidth = Email::parse("carol@ｅｘａｍｐｌｅ.com").unwrap();
        assert_eq!(fullwidth.as_str(), "carol@ｅｘａｍｐｌｅ.com", "shown as typed");
        assert_eq!(fullwidth.key(), Email::parse("carol@example.com").unwrap().key());
        let unicode = Email::parse("dora@Bücher.example").unwrap();
        let ascii = Email::parse("dora@XN--BCHER-KVA.example").unwrap();
        assert_eq!(unicode.key(), "dora@xn--bcher-kva.example");
        assert_eq!(ascii.key(), unicode.key());
        assert_eq!((unicode.as_str(), ascii.as_str()), ("dora@Bücher.example", "dora@XN--BCHER-KVA.example"));
        // The local part is still the user's own.
        assert_ne!(Email::key_of("Dora@bücher.example"), unicode.key());
        // A ref or a login finds the address by either spelling.
        for spelling in ["dora@bücher.example", "dora@BÜCHER.EXAMPLE", "dora@xn--bcher-kva.example"] {
            assert_eq!(UserRef::parse(spelling), Ok(UserRef::Email(unicode.key().to_owned())), "{spelling}");
            assert_eq!(UserRef::login(spelling), Ok(UserRef::Email(unicode.key().to_owned())), "{spelling}");
        }
        // Address literals keep their form.
        assert_eq!(Email::parse("a@[IPv6:2001:DB8::1]").unwrap().key(), "a@[ipv6:2001:db8::1]");
        // Domains IDNA refuses are refused.
        // (Punycode that decodes to plain ASCII; a label mixing left-to-right and Hebrew
        // letters, against the bidi rule; a label whose ASCII form is over 63 bytes.)
        let scattered: String = (0..21u32).filter_map(|i| char::from_u32(0x4E00 + i * 997)).collect();
        let long_label = format!("x@{scattered}.example");
        assert!(long_label.split(['@', '.']).all(|l| l.len() <= 63), "the address parser takes it");
        for bad in ["x@xn--a.example", "x@aא.example", long_label.as_str()] {
            let e = Email::parse(bad).unwrap_err();
            assert_eq!(e.field, "email", "{bad}");
            assert!(e.reason.contains("IDNA"), "{bad}: {e}");
        }
    }

    #[test]
    fn scope_names_follow_the_pattern() {
        assert!(Scope::parse("default").is_ok());
        assert!(Scope::parse("a-b_c9").is_ok());
        assert!(Scope::parse("-a").is_err());
        assert!(Scope::parse("A").is_err());
        assert!(Scope::parse(&"a".repeat(64)).is_err());
        assert!(Scope::parse(&"a".repeat(63)).is_ok());
        assert!(Scope::parse("_admin").is_err());
        assert!(Scope::from_stored("_admin").is_ok_and(|s| s.is_admin()));
        assert!(Scope::from_stored("_other").is_err());
    }

    #[test]
    fn password_policy_and_redaction() {
        assert!(matches!(Password::new("short"), Err(crate::Error::WeakPassword(_))));
        assert!(matches!(Password::new("aaaaaaaaaa"), Err(crate::Error::WeakPassword(_))));
        assert!(Password::new(&"x".repeat(257)).is_err());
        let p = Password::new("correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
    }

    #[test]
    fn json_with_nul_is_refused_anywhere() {
        assert!(check_json("extra", &serde_json::json!({"a": ["x\0"]})).is_err());
        assert!(check_json("extra", &serde_json::json!({"a\0": 1})).is_err());
        assert!(check_json("extra", &serde_json::json!({"a": {"b": "ok"}})).is_ok());
    }

    #[test]
    fn refs_are_read_by_their_shape() {
        let id = Uuid::now_v7();
        assert_eq!(UserRef::parse(&id.to_string()).unwrap(), UserRef::Id(id));
        assert_eq!(UserRef::parse("A@B.com").unwrap(), UserRef::Email("A@b.com".into()));
        assert_eq!(UserRef::parse("Alice").unwrap(), UserRef::Username("alice".into()));
    }
}
