//! The one HTML escape of the hand-written markup (the admin chart's SVG, the problem
//! pages); askama escapes its templates itself.

/// Escapes text for HTML and SVG, attribute values included (`&`, `<`, `>`, `"`).
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
