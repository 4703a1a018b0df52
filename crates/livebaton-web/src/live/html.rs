//! [`Html`]: what a view renders: markup, as a type apart from text. A view built with `format!` puts every piece of
//! user data through [`Html::escape`] before it is interpolated; with the `maud` feature, a view written with maud
//! (which escapes every interpolated value itself) converts its `Markup` with `.into()`.

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

#[cfg(feature = "maud")]
impl From<maud::Markup> for Html {
    fn from(markup: maud::Markup) -> Self {
        Html(markup.into_string())
    }
}

#[cfg(feature = "maud")]
impl maud::Render for Html {
    /// Markup that is already markup goes in as it is (maud would escape a `String`).
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str(&self.0);
    }
}

#[cfg(all(test, feature = "maud"))]
mod maud_tests {
    use super::Html;

    #[test]
    fn maud_markup_converts_escaped_and_html_goes_into_maud_as_markup() {
        let typed = "<script>alert(1)</script>";
        let html: Html = maud::html! { p { (typed) } }.into();
        assert_eq!(html.as_str(), "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
        let nested = maud::html! { div { (Html::new("<b>bold</b>")) } };
        assert_eq!(nested.into_string(), "<div><b>bold</b></div>");
    }
}
