//! Properties (proptest) of every parser at the edge — usernames, emails, passwords, scope
//! and provider names, user refs, presented secrets — of the JSON merge patch, and of the
//! session state machine: no sequence of operations makes an ended or expired session
//! valid again.
//!
//! Inputs mix arbitrary Unicode with the characters that make normalisation interesting
//! (fullwidth forms, ligatures, combining marks, 'ß', Greek sigma, compatibility
//! characters that NFKC turns into '@', '/', spaces or digits).
//! `PROPTEST_CASES=10000 cargo test -p hallpass-core --test properties` runs longer.

use hallpass_core::service::{Credentials, LoginRequest, NewUser, merge_patch};
use hallpass_core::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use unicode_normalization::UnicodeNormalization;

// ------------------------------------------------------------------ input strategies

/// Characters that stress normalisation and case mapping, beside plain ASCII.
const TRICKY: &[char] = &[
    'a',
    'Z',
    '0',
    '9',
    '_',
    '-',
    '.',
    '@',
    '/',
    ' ',
    '\t',
    '\n',
    '\u{0}',
    '\u{7f}',
    'ß',
    'ẞ',
    'Σ',
    'σ',
    'ς',
    'İ',
    'ı',
    'K', // Kelvin sign
    'Å', // Angstrom sign
    'ﬁ',
    'ﬀ',
    'Ａ',
    'ｚ',
    '０',
    '＠',
    '／',
    '＿',
    '\u{a0}',
    '\u{2002}',
    '\u{3000}',
    '\u{301}',
    '\u{308}',
    '¨',
    '´',
    '¹',
    '½',
    'ℌ',
    'ǅ',
    'Ⅻ',
    '㎏',
    'é',
    'ü',
    '\u{200b}',
    '\u{feff}',
    '\u{202e}',
    // Invisible or direction characters (issue #12): format, default ignorable, private use.
    '\u{ad}',
    '\u{200d}',
    '\u{2066}',
    '\u{fe0f}',
    '\u{e0041}',
    '\u{3164}',
    '\u{ffa0}',
    '\u{e000}',
    // What a URL client rewrites in a path segment, and what NFKC turns into it.
    '\\',
    '?',
    '#',
    '%',
    '‥',
    '．',
    '？',
    '＃',
    '％',
    '＼',
    '℅',
    '中',
    '😀',
    '\u{10ffff}',
];

/// Strings of tricky and ASCII characters, up to `max` characters.
fn tricky(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(TRICKY),
            2 => prop::char::range('a', 'z'),
            1 => prop::char::range('A', 'Z'),
            1 => any::<char>(),
        ],
        0..=max,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// Strings of tricky characters that may be part of a username (no spaces, controls, '@'
/// or '/', in any of their forms).
fn username_like(max: usize) -> impl Strategy<Value = String> {
    let allowed: Vec<char> =
        TRICKY.iter().copied().filter(|c| Username::parse(&format!("x{c}y")).is_ok()).collect();
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(allowed), 2 => prop::char::range('a', 'z'), 1 => prop::char::range('A', 'Z')],
        1..=max,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// Arbitrary strings and tricky ones.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![tricky(max), prop::string::string_regex(&format!(".{{0,{max}}}")).expect("regex")]
}

fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// How a client that formats `/v1/users/{name}/sessions` into a URL sends it (WHATWG URL
/// parsing, the `url` crate): the path segments hallpass receives, percent-decoded as axum's
/// `Path` decodes them.
fn segments_sent(name: &str) -> Vec<String> {
    let url = url::Url::parse(&format!("http://h/v1/users/{name}/sessions")).expect("url");
    url.path_segments().expect("path").map(percent_decoded).collect()
}

fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
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
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------------ usernames

proptest! {
    #[test]
    fn username_parse_never_panics_and_keeps_what_was_typed(s in text(80)) {
        if let Ok(u) = Username::parse(&s) {
            prop_assert_eq!(u.as_str(), s.trim());
            let n = u.as_str().chars().count();
            prop_assert!((1..=Username::MAX_CHARS).contains(&n));
            prop_assert_eq!(u.key(), Username::key_of(&s));
            // The stored form rebuilds the same username.
            prop_assert_eq!(Username::from_stored(u.as_str().to_owned()), u.clone());
        }
    }

    #[test]
    fn an_accepted_usernames_key_is_a_fixed_point_that_finds_it(s in tricky(70)) {
        if let Ok(u) = Username::parse(&s) {
            // The key is already normalised: normalising it again changes nothing, so a
            // ref made of the key finds the same user.
            prop_assert_eq!(Username::key_of(u.key()), u.key());
            prop_assert_eq!(UserRef::parse(u.key()), Ok(UserRef::Username(u.key().to_owned())));
            // Nor does it take the shape of an email, a path or an id once normalised.
            prop_assert!(!u.key().contains(['@', '/']) && uuid::Uuid::parse_str(u.key()).is_err());
            prop_assert!(!u.key().chars().any(char::is_control));
        }
    }

    #[test]
    fn case_and_compatibility_variants_share_a_key(s in username_like(30)) {
        // Of usernames that can exist (a ref that is no username finds nobody anyway).
        if Username::parse(&s).is_err() {
            return Ok(());
        }
        let key = Username::key_of(&s);
        // NFKC, NFD and NFC forms of the same text.
        prop_assert_eq!(&Username::key_of(&nfkc(&s)), &key);
        prop_assert_eq!(&Username::key_of(&s.nfd().collect::<String>()), &key);
        prop_assert_eq!(&Username::key_of(&s.nfc().collect::<String>()), &key);
        // The lower-case form, except around a Greek capital sigma: lower-casing picks 'ς'
        // or 'σ' by what follows it (Unicode's Final_Sigma context), and NFKC can change
        // what follows ("Σ¨" becomes "Σ" + space + combining mark). Known and accepted:
        // "ΟΔΟΣ" and "οδος" share a key; a word typed with a non-final 'σ' at its end does not.
        if !s.contains(['Σ', 'σ', 'ς']) {
            prop_assert_eq!(&Username::key_of(&s.to_lowercase()), &key);
        }
        // ASCII letters in either case and in their fullwidth forms.
        let ascii: String = s.chars().filter(char::is_ascii_alphanumeric).collect();
        let fullwidth: String =
            ascii.chars().map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)).collect();
        prop_assert_eq!(Username::key_of(&ascii.to_ascii_uppercase()), Username::key_of(&ascii));
        prop_assert_eq!(Username::key_of(&fullwidth), Username::key_of(&ascii));
    }

    #[test]
    fn an_accepted_username_holds_nothing_invisible_and_stands_as_one_path_segment(s in tricky(40)) {
        use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
        use icu_properties::{CodePointMapData, CodePointSetData};
        if let Ok(u) = Username::parse(&s) {
            for form in [u.as_str(), u.key()] {
                for c in form.chars() {
                    let gc = CodePointMapData::<GeneralCategory>::new().get(c);
                    prop_assert!(!GeneralCategoryGroup::Other.contains(gc), "{c:?} ({gc:?}) in {form:?}");
                    prop_assert!(!CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c), "{c:?} in {form:?}");
                }
                // Formatted into a URL, or pushed as a segment by a client that encodes,
                // it reaches hallpass as one segment, unchanged.
                prop_assert_eq!(segments_sent(form), vec!["v1", "users", form, "sessions"]);
                let mut url = url::Url::parse("http://h/").expect("url");
                url.path_segments_mut().expect("base").pop_if_empty().extend(["v1", "users", form, "sessions"]);
                let sent: Vec<String> = url.path_segments().expect("path").map(percent_decoded).collect();
                prop_assert_eq!(sent, vec!["v1", "users", form, "sessions"]);
            }
        }
    }

    #[test]
    fn a_username_is_found_by_its_ref(s in tricky(40)) {
        if let Ok(u) = Username::parse(&s) {
            prop_assert_eq!(UserRef::parse(u.as_str()), Ok(UserRef::Username(u.key().to_owned())));
            prop_assert_eq!(UserRef::login(u.as_str()), Ok(UserRef::Username(u.key().to_owned())));
        }
    }
}

// ------------------------------------------------------------------ emails

/// Address-like strings: a local part, '@', a domain, with tricky characters mixed in.
fn address() -> impl Strategy<Value = String> {
    (
        prop::string::string_regex("[A-Za-z0-9._%+-]{1,20}").expect("regex"),
        tricky(3),
        prop::string::string_regex("[A-Za-z0-9-]{1,15}(\\.[A-Za-z]{2,6}){1,2}").expect("regex"),
        prop::bool::ANY,
    )
        .prop_map(
            |(local, noise, domain, noisy)| {
                if noisy { format!(" {local}{noise}@{domain} ") } else { format!("{local}@{domain}") }
            },
        )
}

proptest! {
    #[test]
    fn email_parse_never_panics_and_keeps_what_was_typed(s in prop_oneof![text(300), address()]) {
        if let Ok(e) = Email::parse(&s) {
            prop_assert_eq!(e.as_str(), s.trim());
            prop_assert!(e.as_str().len() <= 254 && e.as_str().contains('@'));
            prop_assert!(!e.as_str().chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert_eq!(e.key(), Email::key_of(&s));
            prop_assert_eq!(Email::key_of(e.key()), e.key(), "the key is normalised");
            prop_assert_eq!(Email::from_stored(e.as_str().to_owned()), e.clone());
            prop_assert_eq!(UserRef::parse(e.as_str()), Ok(UserRef::Email(e.key().to_owned())));
            prop_assert_eq!(UserRef::login(e.as_str()), Ok(UserRef::Email(e.key().to_owned())));
        }
    }

    #[test]
    fn the_domains_case_does_not_matter_the_local_parts_does(s in address()) {
        let Some((local, domain)) = s.trim().rsplit_once('@') else { return Ok(()) };
        let upper = format!("{local}@{}", domain.to_ascii_uppercase());
        prop_assert_eq!(Email::key_of(&upper), Email::key_of(&s));
        if Email::parse(&s).is_ok() {
            prop_assert!(Email::parse(&upper).is_ok());
        }
        // Nor does its width (UTS #46 maps fullwidth letters and digits).
        let wide: String = domain
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c) } else { c })
            .collect();
        let wide = format!("{local}@{wide}");
        prop_assert_eq!(Email::key_of(&wide), Email::key_of(&s));
        if let Ok(e) = Email::parse(&s) {
            prop_assert_eq!(Email::parse(&wide).map(|w| w.key().to_owned()), Ok(e.key().to_owned()));
            prop_assert!(e.key().is_ascii() || !local.is_ascii(), "the domain's key is ASCII: {}", e.key());
        }
        // The local part is kept as typed: "Bob@x" and "bob@x" are two addresses.
        if local.chars().any(|c| c.is_ascii_lowercase()) {
            let shouted = format!("{}@{domain}", local.to_ascii_uppercase());
            prop_assert_ne!(Email::key_of(&shouted), Email::key_of(&s));
        }
    }
}

// ------------------------------------------------------------------ passwords

proptest! {
    #[test]
    fn a_new_password_is_normalised_never_truncated(s in prop_oneof![text(300), tricky(300)]) {
        let normal = nfkc(&s);
        let n = normal.chars().count();
        let one_char = normal.chars().all(|c| normal.starts_with(c));
        match Password::new(&s) {
            Ok(p) => {
                prop_assert!((Password::MIN_CHARS..=Password::MAX_CHARS).contains(&n));
                prop_assert!(!one_char);
                // Exactly the NFKC form, every character of it.
                prop_assert_eq!(p.expose(), normal.as_bytes());
                prop_assert_eq!(format!("{p:?}"), "Password(***)");
            }
            Err(Error::WeakPassword(why)) => {
                prop_assert!(!(Password::MIN_CHARS..=Password::MAX_CHARS).contains(&n) || one_char, "{why}");
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn a_login_password_compares_equal_to_the_new_one(s in prop_oneof![text(300), tricky(300)]) {
        if let Ok(p) = Password::new(&s) {
            let at_login = Password::for_login(&s);
            prop_assert!(at_login.is_ok());
            prop_assert_eq!(at_login.map(|l| l.expose().to_vec()).unwrap_or_default(), p.expose().to_vec());
        }
        if let Ok(l) = Password::for_login(&s) {
            let normal = nfkc(&s);
            prop_assert_eq!(l.expose(), normal.as_bytes());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_strength_estimate_never_panics_nor_echoes(s in prop_oneof![text(256), tricky(256)], u in tricky(20), e in address()) {
        let Ok(p) = Password::new(&s) else { return Ok(()) };
        let words = password::strength::user_words(Some(&u), Some(&e));
        for min in 0..=5u8 {
            if let Err(why) = password::strength::check(&p, min, &words) {
                prop_assert!(min > 0);
                prop_assert!(why.starts_with("The password"), "{why}");
                prop_assert!(s.chars().count() < 12 || !why.contains(s.as_str()), "{why}");
            }
        }
    }
}

// ------------------------------------------------------------------ scope and provider names

proptest! {
    #[test]
    fn names_are_accepted_exactly_when_they_match_the_pattern(
        s in prop_oneof![
            prop::string::string_regex("[a-z0-9][a-z0-9_-]{0,62}").expect("regex"),
            prop::string::string_regex("[a-zA-Z0-9_ .-]{0,70}").expect("regex"),
            text(70),
        ]
    ) {
        let pattern = regex::Regex::new("^[a-z0-9][a-z0-9_-]{0,62}$").expect("regex");
        let matches = pattern.is_match(&s);
        prop_assert_eq!(Scope::parse(&s).is_ok(), matches, "scope {:?}", s);
        prop_assert_eq!(ProviderName::parse(&s).is_ok(), matches, "provider {:?}", s);
        if let Ok(scope) = Scope::parse(&s) {
            prop_assert_eq!(scope.as_str(), s.as_str());
        }
    }
}

// ------------------------------------------------------------------ user refs

proptest! {
    #[test]
    fn a_ref_is_read_by_its_shape(s in prop_oneof![text(400), tricky(40), address()]) {
        let t = s.trim();
        match UserRef::parse(&s) {
            Ok(UserRef::Id(id)) => prop_assert_eq!(Some(id), uuid::Uuid::parse_str(t).ok()),
            Ok(UserRef::Email(key)) => {
                prop_assert!(t.contains('@') && uuid::Uuid::parse_str(t).is_err());
                prop_assert_eq!(key, Email::key_of(t));
            }
            Ok(UserRef::Username(key)) => {
                prop_assert!(!t.contains('@') && uuid::Uuid::parse_str(t).is_err());
                prop_assert_eq!(key, Username::key_of(t));
            }
            Err(_) => prop_assert!(t.is_empty() || t.len() > 320 || t.chars().any(char::is_control)),
        }
    }

    #[test]
    fn an_id_is_a_ref_in_every_spelling(bytes in any::<[u8; 16]>()) {
        let id = uuid::Uuid::from_bytes(bytes);
        for spelling in [id.to_string(), id.simple().to_string(), id.to_string().to_uppercase(), format!(" {id} ")] {
            prop_assert_eq!(UserRef::parse(&spelling), Ok(UserRef::Id(id)));
        }
        prop_assert!(Username::parse(&id.to_string()).is_err(), "a username never looks like an id");
    }
}

// ------------------------------------------------------------------ presented secrets

proptest! {
    #[test]
    fn presented_secrets_hash_like_their_trimmed_text(a in text(200), b in text(200)) {
        let ha = (SessionToken::from_presented(&a).hash(), Code::from_presented(&a).hash(), ApiKeySecret::from_presented(&a).hash());
        let hb = (SessionToken::from_presented(&b).hash(), Code::from_presented(&b).hash(), ApiKeySecret::from_presented(&b).hash());
        // The same text hashes the same whatever its kind; different texts differently.
        prop_assert_eq!(ha.0, ha.1);
        prop_assert_eq!(ha.0, ha.2);
        prop_assert_eq!(ha.0 == hb.0, a.trim() == b.trim());
        prop_assert_eq!(ha.0, TokenHash::of(a.trim()));
        prop_assert_eq!(format!("{:?}", SessionToken::from_presented(&a)), "SessionToken(***)");
    }

    #[test]
    fn many_distinct_secrets_have_distinct_hashes(texts in prop::collection::btree_set(text(64), 1..200)) {
        let trimmed: BTreeSet<&str> = texts.iter().map(|t| t.trim()).collect();
        let hashes: BTreeSet<[u8; 32]> = texts.iter().map(|t| *Code::from_presented(t).hash().as_bytes()).collect();
        prop_assert_eq!(hashes.len(), trimmed.len());
    }
}

#[test]
fn generated_secrets_round_trip_through_presentation() {
    for _ in 0..100 {
        let t = SessionToken::generate();
        assert!(t.expose().starts_with(SessionToken::PREFIX));
        assert_eq!(SessionToken::from_presented(&format!(" {} ", t.expose())).hash(), t.hash());
        let c = Code::generate();
        assert!(c.expose().starts_with(Code::PREFIX) && c.hash() != t.hash());
        assert!(ApiKeySecret::generate().expose().starts_with(ApiKeySecret::PREFIX));
    }
}

// ------------------------------------------------------------------ merge patch (RFC 7396)

/// JSON values with few distinct keys (so patches collide with targets) and nested objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(|n| json!(n)),
        prop::sample::select(vec!["", "x", "y"]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c", "d"]), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c", "d"]), json_value(), 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// RFC 7396, section 2, transcribed.
fn reference_merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else { return patch.clone() };
    let mut target = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(name);
        } else {
            let merged = reference_merge(target.get(name).unwrap_or(&Value::Null), value);
            target.insert(name.clone(), merged);
        }
    }
    Value::Object(target)
}

fn merged(target: &Map<String, Value>, patch: &Value) -> Result<Map<String, Value>> {
    let mut t = target.clone();
    merge_patch(&mut t, patch).map(|()| t)
}

proptest! {
    #[test]
    fn merge_patch_follows_rfc_7396(target in json_object(), patch in json_object()) {
        let patch = Value::Object(patch);
        let got = merged(&target, &patch).expect("an object patch applies");
        prop_assert_eq!(Value::Object(got.clone()), reference_merge(&Value::Object(target.clone()), &patch));
        // Idempotent: the same patch again changes nothing.
        prop_assert_eq!(merged(&got, &patch).expect("applies"), got.clone());
        // No null survives at the top level of what the patch touched.
        for (k, v) in patch.as_object().into_iter().flatten() {
            prop_assert_eq!(v.is_null(), !got.contains_key(k));
        }
    }

    #[test]
    fn the_empty_patch_is_the_identity(target in json_object()) {
        prop_assert_eq!(merged(&target, &json!({})).expect("applies"), target);
    }

    #[test]
    fn a_patch_that_is_not_an_object_is_refused_and_changes_nothing(target in json_object(), patch in json_value()) {
        let mut t = target.clone();
        let r = merge_patch(&mut t, &patch);
        prop_assert_eq!(r.is_ok(), patch.is_object());
        if !patch.is_object() {
            prop_assert_eq!(t, target);
        }
    }
}

// ------------------------------------------------------------------ the session state machine

const IDLE_SECS: i64 = 60;
const ABSOLUTE_SECS: i64 = 300;
const USERS: usize = 3;
const PASSWORD: &str = "velvet kumquat orbit lantern";

#[derive(Debug, Clone)]
enum Op {
    Login(usize),
    Get(usize),
    Freshen(usize),
    Patch(usize),
    End(usize),
    EndOthers(usize),
    Advance(i64),
    SetActive(usize, bool),
    SetPassword(usize),
    EndAllOfUser(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    let s = 0..64usize;
    prop_oneof![
        4 => u.clone().prop_map(Op::Login),
        4 => s.clone().prop_map(Op::Get),
        3 => s.clone().prop_map(Op::Freshen),
        2 => s.clone().prop_map(Op::Patch),
        2 => s.clone().prop_map(Op::End),
        1 => s.prop_map(Op::EndOthers),
        4 => (0..=2 * IDLE_SECS).prop_map(Op::Advance),
        1 => (u.clone(), any::<bool>()).prop_map(|(u, a)| Op::SetActive(u, a)),
        1 => u.clone().prop_map(Op::SetPassword),
        1 => u.prop_map(Op::EndAllOfUser),
    ]
}

/// What the model knows of one session.
#[derive(Debug)]
struct ModelSession {
    token: SessionToken,
    user: usize,
    ended: bool,
    expires_at: i64,
    absolute_expires_at: i64,
    /// Once the model judged it invalid; it must stay so.
    was_invalid: bool,
}

struct Model {
    now: i64,
    active: [bool; USERS],
    sessions: Vec<ModelSession>,
}

impl Model {
    fn valid(&self, i: usize) -> bool {
        let s = &self.sessions[i];
        !s.ended && self.now < s.expires_at.min(s.absolute_expires_at) && self.active[s.user]
    }

    fn end_user(&mut self, user: usize, keep: Option<usize>) {
        for (i, s) in self.sessions.iter_mut().enumerate() {
            if s.user == user && Some(i) != keep {
                s.ended = true;
            }
        }
    }
}

async fn run_machine(ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let mut settings =
        Settings { hash_params: HashParams { m_cost: 64, t_cost: 1, p_cost: 1 }, ..Default::default() };
    settings.default_scope.session_idle_timeout = time::Duration::seconds(IDLE_SECS);
    settings.default_scope.session_absolute_timeout = time::Duration::seconds(ABSOLUTE_SECS);
    let clock = Arc::new(FakeClock::fixed());
    let hp = Hallpass::with_clock(Arc::new(MemoryStore::new()), settings, clock.clone()).expect("service");
    let scope = Scope::parse("app").expect("scope");
    let mut ids = Vec::new();
    for u in 0..USERS {
        let new = NewUser {
            username: Some(Username::parse(&format!("user{u}")).expect("username")),
            password: Some(Password::new(PASSWORD).expect("password")),
            ..Default::default()
        };
        ids.push(hp.register(&scope, new).await.expect("register").id);
    }
    let mut m = Model { now: 0, active: [true; USERS], sessions: Vec::new() };

    for op in ops {
        // The session an op names: the n-th one made so far, if any.
        let pick = |n: usize, m: &Model| (!m.sessions.is_empty()).then(|| n % m.sessions.len());
        match op {
            Op::Login(u) => {
                let credentials = Credentials::Password {
                    login: UserRef::login(&format!("user{u}")).expect("login"),
                    password: Password::for_login(PASSWORD).expect("password"),
                };
                let req = LoginRequest {
                    credentials,
                    data: JsonObject::new(),
                    client: ClientInfo::default(),
                    device: None,
                };
                match hp.login(&scope, req).await {
                    Ok(r) => {
                        prop_assert!(m.active[u], "an inactive user logged in");
                        m.sessions.push(ModelSession {
                            token: r.token,
                            user: u,
                            ended: false,
                            expires_at: m.now + IDLE_SECS,
                            absolute_expires_at: m.now + ABSOLUTE_SECS,
                            was_invalid: false,
                        });
                    }
                    Err(Error::UserInactive(_)) => prop_assert!(!m.active[u]),
                    Err(e) => prop_assert!(false, "login: {e:?}"),
                }
            }
            Op::Get(n) | Op::Patch(n) | Op::Freshen(n) | Op::EndOthers(n) => {
                let Some(i) = pick(n, &m) else { continue };
                let expected = m.valid(i);
                let token = &m.sessions[i].token;
                let got = match op {
                    Op::Get(_) => hp.get_session(&scope, token).await.map(|_| ()),
                    Op::Patch(_) => hp.patch_session_data(&scope, token, &json!({"n": n})).await.map(|_| ()),
                    Op::Freshen(_) => hp.freshen(&scope, token).await.map(|s| {
                        // Moved forward, never past the absolute expiry.
                        assert!(s.expires_at <= s.absolute_expires_at);
                    }),
                    _ => hp.end_other_sessions(&scope, token).await.map(|_| ()),
                };
                match got {
                    Ok(()) => {
                        prop_assert!(expected, "{op:?}: session {i} is valid again: {:?}", m.sessions[i])
                    }
                    Err(Error::SessionInvalid) => {
                        prop_assert!(!expected, "{op:?}: valid session {i} refused")
                    }
                    Err(e) => prop_assert!(false, "{op:?}: {e:?}"),
                }
                if expected {
                    match op {
                        Op::Freshen(_) => {
                            let s = &mut m.sessions[i];
                            s.expires_at = (m.now + IDLE_SECS).min(s.absolute_expires_at);
                        }
                        Op::EndOthers(_) => {
                            let user = m.sessions[i].user;
                            m.end_user(user, Some(i));
                        }
                        _ => {}
                    }
                }
            }
            Op::End(n) => {
                let Some(i) = pick(n, &m) else { continue };
                hp.end_session(&scope, &m.sessions[i].token).await.expect("end is idempotent");
                m.sessions[i].ended = true;
            }
            Op::Advance(secs) => {
                clock.advance(time::Duration::seconds(secs));
                m.now += secs;
            }
            Op::SetActive(u, active) => {
                let patch = UserPatch { active: Some(active), ..Default::default() };
                hp.update_user(&scope, &UserRef::Id(ids[u]), patch).await.expect("update");
                if !active {
                    m.end_user(u, None);
                }
                m.active[u] = active;
            }
            Op::SetPassword(u) => {
                let p = Password::new(PASSWORD).expect("password");
                hp.set_password(&scope, &UserRef::Id(ids[u]), p).await.expect("set password");
                m.end_user(u, None);
            }
            Op::EndAllOfUser(u) => {
                hp.end_user_sessions(&scope, &UserRef::Id(ids[u])).await.expect("end all");
                m.end_user(u, None);
            }
        }
        // Whatever happened, every session the model once found invalid is still invalid,
        // by the model and by the service.
        for i in 0..m.sessions.len() {
            let valid = m.valid(i);
            prop_assert!(!(valid && m.sessions[i].was_invalid), "the model revived session {i}");
            m.sessions[i].was_invalid |= !valid;
            let served = hp.get_session(&scope, &m.sessions[i].token).await;
            prop_assert_eq!(served.is_ok(), valid, "session {} at t={}: {:?}", i, m.now, m.sessions[i]);
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn no_sequence_of_operations_revives_an_ended_or_expired_session(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run_machine(ops))?;
    }
}

proptest! {
    /// A change message is whatever text reaches the database's channel (anyone who may
    /// `NOTIFY` can send one): reading it never panics, and what is not a change hallpass
    /// wrote drops everything. Strings of 66 characters and of 64-byte tails, with
    /// multi-byte characters, are where byte slicing used to panic.
    #[test]
    fn any_change_message_reads_without_panicking(
        tail in "[\\PC]{0,70}",
        wide in proptest::collection::vec(prop_oneof![Just('é'), Just('€'), Just('a'), Just('0')], 20..64),
    ) {
        for text in [tail.clone(), format!("s:{tail}"), format!("u:{tail}"), format!("s:{}", wide.iter().collect::<String>())] {
            let change = Change::from_wire(&text);
            if !text.is_ascii() {
                prop_assert_eq!(change, Change::All);
            }
        }
    }

    /// What hallpass writes, it reads back.
    #[test]
    fn change_messages_round_trip(
        bytes in proptest::array::uniform32(any::<u8>()),
        id in any::<u128>(),
        scope in "[a-z0-9][a-z0-9_-]{0,62}",
        known in any::<bool>(),
        flag in any::<bool>(),
    ) {
        let scope = hallpass_core::types::Scope::parse(&scope).unwrap();
        let id = uuid::Uuid::from_u128(id);
        let session = hallpass_core::store::SessionChange {
            scope: scope.clone(),
            hash: TokenHash(bytes),
            id: known.then_some(id),
            user: (!known).then_some(id),
            ended: flag,
        };
        let changes = [
            Change::Session(session),
            Change::user(&scope, id),
            Change::user(&hallpass_core::types::Scope::admin(), id),
            Change::Key { scope, id, revoked: flag },
            Change::All,
        ];
        for change in changes {
            prop_assert_eq!(Change::from_wire(&change.to_wire()), change);
        }
    }
}

#[test]
fn a_non_ascii_session_change_of_64_bytes_is_all() {
    // 64 bytes, the length of a session hash in hex, whose first character is three
    // bytes long: cutting two-byte pieces lands inside it.
    let text = format!("s:€{}", "a".repeat(61));
    assert_eq!(text.len(), 66);
    assert_eq!(Change::from_wire(&text), Change::All);
    // The form of hallpass before the change stream (no scope): read as "drop all".
    assert_eq!(Change::from_wire(&format!("s:{}", "AB".repeat(32))), Change::All);
    assert_eq!(Change::from_wire(&format!("u:{}", uuid::Uuid::nil())), Change::All);
    let hash = "AB".repeat(32);
    let id = uuid::Uuid::from_u128(7);
    assert_eq!(
        Change::from_wire(&format!("s:app:{hash}:{id}:-:e")),
        Change::Session(hallpass_core::store::SessionChange {
            scope: hallpass_core::types::Scope::parse("app").unwrap(),
            hash: TokenHash([0xab; 32]),
            id: Some(id),
            user: None,
            ended: true,
        })
    );
    // Anything after the last field, or a scope no API key could name, is not trusted.
    assert_eq!(Change::from_wire(&format!("s:app:{hash}:{id}:-:e:x")), Change::All);
    assert_eq!(Change::from_wire(&format!("u:App:{id}")), Change::All);
}
