//! Rich text: HTML that is sanitised, on the way in and again on the way out.
//!
//! [`SafeHtml`] is the only way this workspace turns text into markup: its field is private, so a value of it exists
//! only as ammonia's output ([`SafeHtml::sanitize`], [`SafeHtml::render`]) or as escaped plain text
//! ([`SafeHtml::from_plain_text`]). A renderer that prints rich text takes a `SafeHtml`, never a `&str`.
//!
//! Why twice: what is stored under a rich-text key is not always what was sanitised when it was written (a field whose
//! type changed from `textarea`, data kept under a key that was removed and re-added, a save from a form loaded
//! before the definition changed). Sanitising at output makes the page safe whatever the database holds.
//!
//! Bounds. Sanitising parses the HTML (html5ever), whose tree builder walks the stack of open elements on every tag:
//! 20,000 nested `<div>` take seconds. A linear pre-scan refuses, before any parsing, more than
//! [`MAX_RICH_TEXT_ELEMENTS`] start tags or nesting deeper than [`MAX_RICH_TEXT_DEPTH`], so the parse costs at most
//! (elements × depth) steps. The scan reads the HTML as written: an element is open from its start tag to its end tag
//! (or to the end of the text); void elements (`<br>`, `<img>`, …) never open; a `<p>`, `<li>`, `<dt>`, `<dd>`,
//! `<tr>`, `<td>`, `<th>` or `<option>` closes one of its own kind that is innermost. Anything that looks like a tag
//! counts, even inside a comment or an attribute value: the scan may refuse odd markup, never let a costly one
//! through. One more bound: a formatting element (`<b>`, `<i>`, `<a>`, …) closed by an ancestor's end tag instead of
//! its own (`<p><b x=1></p>`) stays "active" in the parser, which rebuilds every active one before each later tag or
//! text: K of them with K tags after them cost K² nodes (a 16 KB value made megabytes). At most
//! [`MAX_UNCLOSED_FORMATTING`] such elements are allowed; editors close their formatting tags.

use std::fmt;

/// Longest rich-text submission, in characters, before sanitising.
pub const MAX_RICH_TEXT_CHARS: usize = 100_000;
/// Deepest nesting of elements in rich text.
pub const MAX_RICH_TEXT_DEPTH: usize = 32;
/// Most start tags in one rich-text value.
pub const MAX_RICH_TEXT_ELEMENTS: usize = 2_000;
/// Most formatting elements (`<b>`, `<i>`, `<a>`, …) left open by an ancestor's end tag (see the module header).
pub const MAX_UNCLOSED_FORMATTING: usize = 12;
/// Longest stored value [`SafeHtml::render`] parses; a longer one is shown as text. Above the submission limit because
/// sanitised output can be a little longer than its input (escaped characters, `rel` attributes on links).
const MAX_RENDERED_CHARS: usize = 2 * MAX_RICH_TEXT_CHARS;

/// Why rich text was refused before sanitising. `Display` is the message a form shows next to the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RichTextError {
    /// Longer than [`MAX_RICH_TEXT_CHARS`].
    TooLong,
    /// Nested deeper than [`MAX_RICH_TEXT_DEPTH`].
    TooDeep,
    /// More than [`MAX_RICH_TEXT_ELEMENTS`] start tags.
    TooManyElements,
    /// More than [`MAX_UNCLOSED_FORMATTING`] formatting elements closed by an ancestor instead of their own end tag.
    TooManyUnclosed,
}

impl fmt::Display for RichTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RichTextError::TooLong => write!(f, "must be at most {MAX_RICH_TEXT_CHARS} characters"),
            RichTextError::TooDeep => write!(f, "is nested too deeply (at most {MAX_RICH_TEXT_DEPTH} levels)"),
            RichTextError::TooManyElements => {
                write!(f, "has too many HTML elements (at most {MAX_RICH_TEXT_ELEMENTS})")
            }
            RichTextError::TooManyUnclosed => {
                write!(f, "has too many formatting tags (b, i, a, …) left unclosed (at most {MAX_UNCLOSED_FORMATTING})")
            }
        }
    }
}

impl std::error::Error for RichTextError {}

/// HTML that is safe to put in a page as markup: sanitised by ammonia (its default allow-list: no scripts, styles,
/// event handlers or `javascript:` URLs; links get `rel="noopener noreferrer"`), or escaped text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SafeHtml(String);

impl SafeHtml {
    /// Sanitises submitted HTML, after checking its length and shape (see the module documentation). The sanitised
    /// HTML is checked too: the parser closes what was left open and re-opens misnested formatting (`<b>` around
    /// paragraphs), so a value can grow; one that grew past the bounds is refused, so that everything stored can be
    /// shown as markup by [`SafeHtml::render`].
    ///
    /// # Errors
    /// [`RichTextError`] when the HTML (or what sanitising made of it) is too long, too deeply nested or has too many
    /// elements.
    pub fn sanitize(html: &str) -> Result<SafeHtml, RichTextError> {
        if exceeds(html, MAX_RICH_TEXT_CHARS) {
            return Err(RichTextError::TooLong);
        }
        check_shape(html)?;
        let clean = ammonia::clean(html);
        check_shape(&clean)?;
        if exceeds(&clean, MAX_RENDERED_CHARS) {
            return Err(RichTextError::TooLong);
        }
        Ok(SafeHtml(clean))
    }

    /// A stored rich-text value, made safe to show: sanitised again (it may not have been when it was stored), or, when
    /// it is beyond the bounds that keep sanitising cheap, escaped and shown as text. Never fails.
    pub fn render(stored: &str) -> SafeHtml {
        match (!exceeds(stored, MAX_RENDERED_CHARS)).then(|| check_shape(stored)) {
            Some(Ok(())) => SafeHtml(ammonia::clean(stored)),
            _ => SafeHtml::from_plain_text(stored),
        }
    }

    /// Plain text as HTML that shows it: `&`, `<`, `>`, `"` and `'` escaped, line breaks as `<br>`, in one paragraph.
    pub fn from_plain_text(text: &str) -> SafeHtml {
        let mut html = String::with_capacity(text.len() + 7);
        html.push_str("<p>");
        for c in text.chars() {
            match c {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '"' => html.push_str("&quot;"),
                '\'' => html.push_str("&#39;"),
                '\n' => html.push_str("<br>"),
                '\r' => {}
                c => html.push(c),
            }
        }
        html.push_str("</p>");
        SafeHtml(html)
    }

    /// The HTML.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HTML, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether the HTML shows nothing: no text (other than whitespace) and no image. `<p> </p>` shows nothing.
    pub fn shows_nothing(&self) -> bool {
        shows_nothing(&self.0)
    }
}

impl AsRef<str> for SafeHtml {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SafeHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` is longer than `max` characters (counted only when its bytes could be more).
fn exceeds(text: &str, max: usize) -> bool {
    text.len() > max && text.chars().count() > max
}

/// Elements that have no content and so never open (HTML's void elements).
const VOID: [&[u8]; 14] = [
    b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta", b"param", b"source",
    b"track", b"wbr",
];
/// Elements whose start tag closes an innermost element of the same kind (`<li>a<li>b`).
const CLOSES_ITS_KIND: [&[u8]; 8] = [b"p", b"li", b"dt", b"dd", b"tr", b"td", b"th", b"option"];
/// The HTML standard's formatting elements: the parser keeps them active after an ancestor closes them.
const FORMATTING: [&[u8]; 14] =
    [b"a", b"b", b"big", b"code", b"em", b"font", b"i", b"nobr", b"s", b"small", b"strike", b"strong", b"tt", b"u"];

/// The linear pre-scan: at most [`MAX_RICH_TEXT_ELEMENTS`] start tags, nesting at most [`MAX_RICH_TEXT_DEPTH`] deep.
/// Work per byte is constant (an end tag looks through at most `MAX_RICH_TEXT_DEPTH` open names).
fn check_shape(html: &str) -> Result<(), RichTextError> {
    let bytes = html.as_bytes();
    let mut open: Vec<&[u8]> = Vec::with_capacity(MAX_RICH_TEXT_DEPTH);
    let mut elements = 0usize;
    // Formatting elements closed by an ancestor's end tag (still active for the parser).
    let mut unclosed = 0usize;
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        let tag = at + offset + 1;
        at = tag;
        let (closing, name_start) = match bytes.get(tag) {
            Some(b'/') => (true, tag + 1),
            _ => (false, tag),
        };
        if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            continue; // text, a comment, a doctype: not an element
        }
        let name_len = bytes[name_start..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        let name = &bytes[name_start..name_start + name_len];
        let same = |other: &&[u8]| other.eq_ignore_ascii_case(name);
        if closing {
            if let Some(index) = open.iter().rposition(same) {
                let formatting = |name: &&&[u8]| FORMATTING.iter().any(|kind| kind.eq_ignore_ascii_case(name));
                unclosed += open[index + 1..].iter().filter(formatting).count();
                if unclosed > MAX_UNCLOSED_FORMATTING {
                    return Err(RichTextError::TooManyUnclosed);
                }
                open.truncate(index);
            }
            continue;
        }
        elements += 1;
        if elements > MAX_RICH_TEXT_ELEMENTS {
            return Err(RichTextError::TooManyElements);
        }
        if VOID.iter().any(same) {
            continue;
        }
        if CLOSES_ITS_KIND.iter().any(same) && open.last().is_some_and(same) {
            open.pop();
        }
        open.push(name);
        if open.len() > MAX_RICH_TEXT_DEPTH {
            return Err(RichTextError::TooDeep);
        }
    }
    Ok(())
}

/// Whether sanitised HTML has no visible text and no image. The input is serialiser output (or escaped text), so
/// attribute values are always double-quoted and `<` in text is always escaped: a small scanner is exact here.
fn shows_nothing(html: &str) -> bool {
    let mut text = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let tag = &rest[open..];
        if tag.get(..4).is_some_and(|start| start.eq_ignore_ascii_case("<img")) {
            return false;
        }
        let mut quoted = false;
        let end = tag.char_indices().find(|&(_, c)| {
            if c == '"' {
                quoted = !quoted;
            }
            c == '>' && !quoted
        });
        rest = end.map_or("", |(at, _)| &tag[at + 1..]);
    }
    text.push_str(rest);
    text.replace("&nbsp;", " ").trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}x{}", "<div>".repeat(depth), "</div>".repeat(depth))
    }

    #[test]
    fn depth_counts_open_elements_as_written() {
        assert_eq!(check_shape(&nested(MAX_RICH_TEXT_DEPTH)), Ok(()));
        assert_eq!(check_shape(&nested(MAX_RICH_TEXT_DEPTH + 1)), Err(RichTextError::TooDeep));
        // Siblings do not nest; void elements and self-closing kinds do not pile up.
        let flat = "<p>a</p><div><b>b</b></div>".repeat(100);
        assert_eq!(check_shape(&flat), Ok(()));
        assert_eq!(check_shape(&"<li>item".repeat(100)), Ok(()));
        assert_eq!(check_shape(&"<p>line<br>".repeat(100)), Ok(()));
        // Case does not matter; an end tag with nothing open to close is ignored.
        assert_eq!(check_shape(&"<DIV></div></span>".repeat(100)), Ok(()));
        // An unclosed element stays open.
        assert_eq!(check_shape(&"<span>".repeat(MAX_RICH_TEXT_DEPTH + 1)), Err(RichTextError::TooDeep));
    }

    #[test]
    fn only_tags_count_as_elements() {
        let text = "a < b, 1 <2, <!-- c -->, </ >, <3 ".repeat(1000);
        assert_eq!(check_shape(&text), Ok(()));
        assert_eq!(check_shape(&"<br>".repeat(MAX_RICH_TEXT_ELEMENTS)), Ok(()));
        assert_eq!(check_shape(&"<br>".repeat(MAX_RICH_TEXT_ELEMENTS + 1)), Err(RichTextError::TooManyElements));
    }

    #[test]
    fn plain_text_is_escaped() {
        let safe = SafeHtml::from_plain_text("<img src=x onerror=alert(1)> & \"q\" 'a'\r\nnext");
        assert_eq!(safe.as_str(), "<p>&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#39;a&#39;<br>next</p>");
    }

    #[test]
    fn render_sanitises_and_falls_back_to_text() {
        let shown = SafeHtml::render("<p onclick=\"x()\">hi</p><script>alert(1)</script>");
        assert_eq!(shown.as_str(), "<p>hi</p>");
        let deep = nested(MAX_RICH_TEXT_DEPTH + 1);
        let shown = SafeHtml::render(&deep);
        assert!(shown.as_str().starts_with("<p>&lt;div&gt;"), "{shown}");
    }
}
