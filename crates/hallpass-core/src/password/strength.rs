//! How guessable a new password is: Dropbox's zxcvbn estimate (the `zxcvbn` crate), with the
//! user's own username and email counted as known to the attacker.
//!
//! zxcvbn scores a password 0 to 4 by the guesses an attacker who knows common passwords,
//! words, names, keyboard patterns, dates and l33t substitutions would need: 0 below 10^3,
//! 1 below 10^6, 2 below 10^8, 3 below 10^10, 4 beyond. A scope refuses passwords scoring
//! below its `min_password_score`, with zxcvbn's own advice ("This is a top-100 common
//! password. Add another word or two.") as the reason.
//!
//! Two choices go beyond calling zxcvbn:
//! - The user's words (username, email, the email's local part, and their pieces of three
//!   or more letters) are removed from the password before it is scored, so a password
//!   that is strong only thanks to the user's own name ("alice password" for alice) is
//!   refused. zxcvbn alone scores that one 3: it counts the name as one cheap guess but
//!   still credits the structure around it. The words are also handed to zxcvbn as user
//!   inputs, so reversed or l33t forms of them are caught too.
//! - At most [`ANALYSED_CHARS`] (48) characters are scored. zxcvbn's cost grows with the
//!   square of the length and with the variety of l33t characters (`4@8({[<3691!|70$5+%2`):
//!   for an adversarial 100-character input (the crate's own cap) one call took 500-900 ms
//!   in a release build on the 2-core development machine, for 64 characters up to 145 ms,
//!   for 48 characters 30 to 110 ms (a few Argon2 hashes); ordinary passwords take well
//!   under 2 ms (`cargo run --release -p hallpass-core --example password_strength_cost`). A
//!   longer password is judged by its first 48 characters, which is conservative: a prefix
//!   is never harder to guess than the whole, and 48 characters below the minimum score are
//!   a repetition or a common phrase. The stored password is never truncated.
//!
//! The check is CPU-bound, so the service runs it on the bounded hashing pool, beside
//! Argon2, never on the async workers.

use crate::types::Password;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;
use zxcvbn::matching::patterns::MatchPattern;

/// The highest zxcvbn score.
pub const MAX_SCORE: u8 = 4;

/// Most characters of a password zxcvbn looks at (see the module documentation).
pub const ANALYSED_CHARS: usize = 48;

/// Shortest user word that is removed from a password before scoring.
const MIN_WORD_CHARS: usize = 3;

/// What zxcvbn suggests when it has nothing more specific to say.
const GENERIC_ADVICE: &str = "Add another word or two. Uncommon words are better.";

/// The words of a user an attacker would try first: the username, the email, the email's
/// local part, and the pieces of the username and local part between punctuation, each
/// NFKC-normalised and lower-cased, longest first, without duplicates.
pub fn user_words(username: Option<&str>, email: Option<&str>) -> Vec<String> {
    fn norm(s: &str) -> String {
        s.trim().nfkc().collect::<String>().to_lowercase()
    }
    fn add_with_pieces(s: &str, words: &mut Vec<String>) {
        words.push(s.to_owned());
        words.extend(s.split(|c: char| !c.is_alphanumeric()).map(str::to_owned));
    }
    let mut words = Vec::new();
    if let Some(u) = username {
        add_with_pieces(&norm(u), &mut words);
    }
    if let Some(e) = email {
        let e = norm(e);
        if let Some((local, _domain)) = e.rsplit_once('@') {
            add_with_pieces(local, &mut words);
        }
        words.push(e);
    }
    words.retain(|w| w.chars().count() >= MIN_WORD_CHARS);
    words.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then_with(|| a.cmp(b)));
    words.dedup();
    words
}

/// Checks `password` against a minimum zxcvbn score (0 accepts everything; above
/// [`MAX_SCORE`] counts as [`MAX_SCORE`]). `user_words` come from [`user_words`].
///
/// The error is a reason a person can act on; it never contains the password or any part
/// of it.
pub fn check(password: &Password, min_score: u8, user_words: &[String]) -> Result<(), String> {
    let min_score = min_score.min(MAX_SCORE);
    if min_score == 0 {
        return Ok(());
    }
    let whole = password.as_str();
    // The password without the user's words (lower-cased: the words are). When it holds
    // none of them, the password itself is scored, capitals and all.
    let lower = Zeroizing::new(whole.to_lowercase());
    let mut rest = Zeroizing::new(lower.as_str().to_owned());
    let mut holds_user_word = false;
    for word in user_words {
        if rest.contains(word.as_str()) {
            rest = Zeroizing::new(rest.replace(word.as_str(), ""));
            holds_user_word = true;
        }
    }
    if holds_user_word && rest.trim().is_empty() {
        return Err("The password must not be your username or email address.".into());
    }
    let scored: Zeroizing<String> = Zeroizing::new(
        if holds_user_word { rest.as_str() } else { whole }.chars().take(ANALYSED_CHARS).collect(),
    );
    let inputs: Vec<&str> = user_words.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(&scored, &inputs);
    if u8::from(estimate.score()) >= min_score {
        return Ok(());
    }
    // zxcvbn reports a user word it found (reversed, l33t...) as a dictionary match whose
    // word is one of the inputs.
    let resembles_user_word = estimate.sequence().iter().any(|m| match &m.pattern {
        MatchPattern::Dictionary(d) => user_words.contains(&d.matched_word),
        _ => false,
    });
    let mut reason = String::from(if holds_user_word {
        "The password is too easy to guess: it contains your username or email address, and \
         the rest alone is not enough."
    } else if resembles_user_word {
        "The password is too easy to guess: it resembles your username or email address."
    } else {
        "The password is too easy to guess."
    });
    let advice = estimate.feedback().map(ToString::to_string).unwrap_or_default();
    let advice = advice.trim();
    reason.push(' ');
    reason.push_str(if advice.is_empty() { GENERIC_ADVICE } else { advice });
    Err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s).expect("long enough")
    }

    fn words() -> Vec<String> {
        user_words(Some("Zanzibarquokka"), Some("Mira.Voss@Example.com"))
    }

    #[test]
    fn user_words_are_normalised_split_and_longest_first() {
        assert_eq!(
            words(),
            ["mira.voss@example.com", "zanzibarquokka", "mira.voss", "mira", "voss"].map(String::from)
        );
        assert!(user_words(None, None).is_empty());
        // Pieces under three characters are left to zxcvbn.
        assert_eq!(user_words(Some("jo_x"), None), ["jo_x"].map(String::from));
    }

    #[test]
    fn common_passwords_are_refused_with_zxcvbn_advice() {
        let why = check(&pw("iloveyou"), 3, &[]).unwrap_err();
        assert_eq!(
            why,
            "The password is too easy to guess. This is a top-100 common password. \
             Add another word or two. Uncommon words are better."
        );
        assert!(check(&pw("P@ssw0rd!"), 3, &[]).unwrap_err().contains("Predictable substitutions"));
        assert!(check(&pw("qwertyuiop"), 3, &[]).is_err());
    }

    #[test]
    fn the_users_own_words_count_for_nothing() {
        let w = words();
        assert_eq!(
            check(&pw("ZanzibarQuokka"), 3, &w).unwrap_err(),
            "The password must not be your username or email address."
        );
        assert!(check(&pw("mira.voss@example.com"), 3, &w).is_err());
        let why = check(&pw("zanzibarquokka2024"), 3, &w).unwrap_err();
        assert!(why.contains("contains your username or email address"), "{why}");
        let why = check(&pw("akkouqrabiznaz"), 3, &w).unwrap_err();
        assert!(why.contains("resembles your username"), "{why}");
        // Without the context, the same passwords are fine.
        assert!(check(&pw("zanzibarquokka2024"), 3, &[]).is_ok());
        // The name plus a weak rest is refused; plus a strong rest is accepted.
        assert!(check(&pw("mira password"), 3, &w).is_err());
        assert!(check(&pw("mira correct horse battery staple"), 3, &w).is_ok());
    }

    #[test]
    fn the_minimum_score_decides() {
        assert!(check(&pw("iloveyou"), 0, &[]).is_ok());
        let two = pw("bluegreen7");
        assert!(check(&two, 2, &[]).is_ok());
        assert!(check(&two, 3, &[]).is_err());
        let strong = pw("correct horse battery staple");
        assert!(check(&strong, 4, &[]).is_ok());
        assert!(check(&strong, 200, &[]).is_ok(), "above 4 counts as 4");
        // zxcvbn gives no advice from score 3 up; the reason still says what to do.
        let three = pw("horse battery");
        assert!(check(&three, 3, &[]).is_ok());
        assert_eq!(
            check(&three, 4, &[]).unwrap_err(),
            format!("The password is too easy to guess. {GENERIC_ADVICE}")
        );
    }

    #[test]
    fn long_passwords_are_judged_by_their_start_and_never_echoed() {
        let long = format!("{}{}", "password".repeat(6), "xK9#mQ2$vL7!");
        let why = check(&pw(&long), 3, &[]).unwrap_err();
        assert!(!why.contains("passwordpassword") && !why.contains("xK9"), "{why}");
        let strong_start = format!("correct horse battery staple {}", "a".repeat(200));
        assert!(check(&pw(&strong_start), 3, &[]).is_ok());
    }
}
