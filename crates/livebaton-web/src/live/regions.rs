//! Finding the live regions of a rendered page: elements carrying `data-lb-region` and an `id`.
//!
//! A small scanner instead of an HTML parser or regexes: it only needs tags, attributes, comments and the raw-text
//! elements (`script`, `style`, `textarea`, `title`) whose content may contain `<` without starting a tag. It works on
//! bytes and only ever cuts the input at ASCII `<`/`>`, so it never splits a UTF-8 character and never panics,
//! whatever the input. A region ends at the closing tag of the same name that balances its nesting; a region that is
//! never closed is ignored (its HTML would be a guess). Nested regions are regions too, and part of their parent's HTML.

use std::collections::BTreeMap;

/// The attribute that marks a live region.
pub const REGION_ATTRIBUTE: &str = "data-lb-region";

/// One region: its outer HTML and the region it is nested in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Outer HTML, from `<` of the start tag to `>` of the end tag.
    pub html: String,
    /// The id of the closest enclosing region, if any.
    pub parent: Option<String>,
}

/// A page's regions by id. When two regions share an id the first wins: ids must be unique for the client anyway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Regions(pub BTreeMap<String, Region>);

impl Regions {
    /// The regions of `html`.
    pub fn extract(html: &str) -> Self {
        extract(html)
    }

    /// A region's outer HTML.
    pub fn html(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(|region| region.html.as_str())
    }

    /// Ids and outer HTML, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(id, region)| (id.as_str(), region.html.as_str()))
    }

    /// How many regions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A tag found by the scanner: byte range, lower-cased name, and for start tags the region id if it is one.
#[derive(Debug)]
struct Tag {
    start: usize,
    end: usize,
    name: String,
    closing: bool,
    self_closing: bool,
    region: Option<String>,
}

const VOID: &[&str] =
    &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"];
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title"];

fn extract(html: &str) -> Regions {
    let tags = scan(html.as_bytes());
    let mut regions = Regions::default();
    // Open regions (id, index of the end tag) enclosing the current position, to find each region's parent.
    let mut open: Vec<(String, usize)> = Vec::new();
    for (index, tag) in tags.iter().enumerate() {
        while open.last().is_some_and(|(_, end)| *end < index) {
            open.pop();
        }
        let Some(id) = &tag.region else { continue };
        let Some(end) = matching_end(&tags, index) else { continue };
        let parent = open.last().map(|(parent, _)| parent.clone());
        let outer = html[tag.start..tags[end].end].to_owned();
        regions.0.entry(id.clone()).or_insert(Region { html: outer, parent });
        open.push((id.clone(), end));
    }
    regions
}

/// The index of the end tag balancing the start tag at `index`, counting nested tags of the same name.
fn matching_end(tags: &[Tag], index: usize) -> Option<usize> {
    let name = &tags[index].name;
    let mut depth = 0usize;
    for (offset, tag) in tags[index + 1..].iter().enumerate() {
        if tag.name != *name {
            continue;
        }
        if tag.closing {
            if depth == 0 {
                return Some(index + 1 + offset);
            }
            depth -= 1;
        } else if !tag.self_closing {
            depth += 1;
        }
    }
    None
}

/// Every start and end tag of `bytes`, skipping comments, doctypes and raw text.
fn scan(bytes: &[u8]) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        let start = at + offset;
        let rest = &bytes[start..];
        if rest.starts_with(b"<!--") {
            at = find(bytes, start + 4, b"-->").map_or(bytes.len(), |end| end + 3);
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            at = find(bytes, start + 2, b">").map_or(bytes.len(), |end| end + 1);
        } else if let Some(tag) = parse_tag(bytes, start) {
            at = tag.end;
            if !tag.closing && !tag.self_closing && RAW_TEXT.contains(&tag.name.as_str()) {
                // Skip to the raw-text element's end tag: its content is not markup.
                let closing = format!("</{}", tag.name);
                at = find_ignore_case(bytes, at, closing.as_bytes()).unwrap_or(bytes.len());
            }
            tags.push(tag);
        } else {
            at = start + 1;
        }
    }
    tags
}

/// Parses the tag starting at `bytes[start] == b'<'`, or `None` if it is not a tag (a lone `<` in text).
fn parse_tag(bytes: &[u8], start: usize) -> Option<Tag> {
    let mut at = start + 1;
    let closing = bytes.get(at) == Some(&b'/');
    if closing {
        at += 1;
    }
    let name_start = at;
    if !bytes.get(at)?.is_ascii_alphabetic() {
        return None;
    }
    while bytes.get(at).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b':') {
        at += 1;
    }
    let name = String::from_utf8_lossy(&bytes[name_start..at]).to_ascii_lowercase();
    let mut is_region = false;
    let mut id = None;
    let mut self_closing = false;
    loop {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        match bytes.get(at)? {
            b'>' => break,
            b'/' => {
                at += 1;
                self_closing = bytes.get(at) == Some(&b'>');
                continue;
            }
            _ => {}
        }
        let attr_start = at;
        while bytes.get(at).is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'>' | b'=' | b'/')) {
            at += 1;
        }
        if at == attr_start {
            // A stray `=`: skip it so the loop always advances.
            at += 1;
            continue;
        }
        let attr = String::from_utf8_lossy(&bytes[attr_start..at]).to_ascii_lowercase();
        let mut value = None;
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        if bytes.get(at) == Some(&b'=') {
            at += 1;
            while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let (raw, next) = attribute_value(bytes, at)?;
            value = Some(String::from_utf8_lossy(raw).into_owned());
            at = next;
        }
        match attr.as_str() {
            REGION_ATTRIBUTE => is_region = true,
            "id" => id = id.or(value),
            _ => {}
        }
    }
    let self_closing = self_closing || VOID.contains(&name.as_str());
    let region = if is_region && !closing && !self_closing { id.filter(|id| !id.is_empty()) } else { None };
    Some(Tag { start, end: at + 1, name, closing, self_closing, region })
}

/// A quoted or unquoted attribute value at `at`, and the position after it; `None` if a quote is never closed.
fn attribute_value(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    match bytes.get(at)? {
        quote @ (b'"' | b'\'') => {
            let end = at + 1 + bytes[at + 1..].iter().position(|b| b == quote)?;
            Some((&bytes[at + 1..end], end + 1))
        }
        _ => {
            let mut end = at;
            while bytes.get(end).is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>') {
                end += 1;
            }
            Some((&bytes[at..end], end))
        }
    }
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|window| window == needle).map(|offset| from + offset)
}

fn find_ignore_case(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
        .map(|offset| from + offset)
}
