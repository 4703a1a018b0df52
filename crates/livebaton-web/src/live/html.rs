//! [`Html`]: what a view renders. A plain string, because views build their markup with `format!`; the only safety
//! net is [`Html::escape`], which every piece of user data must go through before it is interpolated.

use std::fmt;

/// Rendered HTML. A newtype so that "already markup" and "text that still needs escaping" are different types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Html(pub String);

impl Html {
    /// Wraps markup the caller built (and escaped) itself.
    pub fn new(markup: impl Into<String>) -> Self {
        Html(markup.into())
    }

    /// Escapes `text` for use in element content and in quoted attribute values: `& < > " '` become entities, so a
    /// value typed by a user can never open a tag or leave an attribute.
    pub fn escape(text: &str) -> String {
        let mut escaped = String::with_capacity(text.len());
        for character in text.chars() {
            match character {
                '&' => escaped.push_str("&amp;"),
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '"' => escaped.push_str("&quot;"),
                '\'' => escaped.push_str("&#39;"),
                other => escaped.push(other),
            }
        }
        escaped
    }

    /// The markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Html {
    fn from(markup: String) -> Self {
        Html(markup)
    }
}
