//! Slugs: URL-safe names made from titles and display names.
//!
//! - [`slugify`] turns any text into lowercase ASCII letters and digits joined by one separator.
//! - [`entity_name_from`] makes an entity name (`_`-separated, at most 50 characters) from a display name.
//! - [`field_key_from`] makes a field key from a field's label the same way, always starting with a letter.
//! - [`unique_slug`] picks the first free variant of a record slug (`base`, `base-2`, `base-3`, …).
//!
//! The checks [`is_entity_name`] and [`is_record_slug`] are the hand-written equivalents of the patterns
//! `^[a-z][a-z0-9_]*$` and `^[a-z0-9]+(?:-[a-z0-9]+)*$`.

/// The longest record slug (and so the longest result of [`unique_slug`]).
pub(crate) const MAX_RECORD_SLUG_CHARS: usize = 255;

/// The longest entity name (and so the longest result of [`entity_name_from`]).
pub(crate) const MAX_ENTITY_NAME_CHARS: usize = 50;

/// The slug used when the base is empty (a title made only of punctuation, for example).
const FALLBACK_SLUG: &str = "item";

/// Lowercase ASCII letters and digits joined by `separator`.
///
/// Letters are lowercased; accented Latin letters are folded to ASCII (`é` → `e`, `ß` → `ss`, `æ` → `ae`, …);
/// apostrophes are dropped (`Don't` → `dont`) so they do not split words; every other run of characters that are not
/// ASCII letters or digits (spaces, punctuation, symbols, letters of other scripts) becomes one `separator`, and the
/// result never starts or ends with a separator. The result may be empty (`"¿?"` → `""`).
pub fn slugify(text: &str, separator: char) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut pending_separator = false;
    for original in text.chars() {
        if matches!(original, '\'' | '\u{2019}' | '\u{2018}' | '`') {
            continue;
        }
        for lower in original.to_lowercase() {
            let mut push = |c: char| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    if pending_separator && !slug.is_empty() {
                        slug.push(separator);
                    }
                    pending_separator = false;
                    slug.push(c);
                } else {
                    pending_separator = true;
                }
            };
            match fold(lower) {
                Some(ascii) => ascii.chars().for_each(&mut push),
                None => push(lower),
            }
        }
    }
    slug
}

/// An entity name made from a display name: [`slugify`] with `_`, cut to at most 50 characters (at a word boundary
/// when there is one, and never ending with `_`).
///
/// The result is not guaranteed to be a valid entity name (`"3D Models"` gives `3d_models`, which does not start
/// with a letter; `"A"` gives `a`, which is too short): validation reports those on `name`.
pub fn entity_name_from(display_name: &str) -> String {
    let name = slugify(display_name, '_');
    truncate_slug(&name, MAX_ENTITY_NAME_CHARS, '_')
}

/// A field key made from a field's label, as the entity form fills it in while a new field's label is typed: the
/// entity-name rules ([`entity_name_from`]: `_`-separated, at most 50 characters), and `field_` in front when the
/// label does not start with a letter (`"3D model"` → `field_3d_model`), so that the key is valid whenever the label
/// has a letter or digit. Empty for a label without any (`""`, `"?!"`): validation then asks for a key.
pub fn field_key_from(label: &str) -> String {
    let key = entity_name_from(label);
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_lowercase()) {
        return key;
    }
    truncate_slug(&format!("field_{key}"), MAX_ENTITY_NAME_CHARS, '_')
}

/// `base`, or `base-2`, `base-3`, … — the first that `taken` says is free.
///
/// An empty `base` becomes `item`. The base is cut (at a `-` when possible) so that the result, suffix included, is
/// never longer than 255 characters, the limit of a record slug. `taken` must eventually answer `false`.
pub fn unique_slug(base: &str, taken: impl Fn(&str) -> bool) -> String {
    let base = if base.is_empty() { FALLBACK_SLUG } else { base };
    let first = truncate_slug(base, MAX_RECORD_SLUG_CHARS, '-');
    if !taken(&first) {
        return first;
    }
    let mut n: u64 = 2;
    loop {
        let suffix = format!("-{n}");
        let room = MAX_RECORD_SLUG_CHARS - suffix.len();
        let mut stem = truncate_slug(base, room, '-');
        if stem.is_empty() {
            stem = FALLBACK_SLUG.to_owned();
        }
        let candidate = format!("{stem}{suffix}");
        if !taken(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

/// Whether `text` matches `^[a-z][a-z0-9_]*$` (entity names and field keys; lengths are checked separately).
pub(crate) fn is_entity_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether `text` matches `^[a-z0-9]+(?:-[a-z0-9]+)*$` (record slugs; the length is checked separately).
pub(crate) fn is_record_slug(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

/// `slug` cut to at most `max` characters. A slug made by [`slugify`] is ASCII, but the cut is on characters so any
/// text is safe. When a cut is needed it is made after the last `separator` that keeps at least half of the room (so
/// a word is not left half-cut), and trailing separators are removed.
fn truncate_slug(slug: &str, max: usize, separator: char) -> String {
    if slug.chars().count() <= max {
        return slug.to_owned();
    }
    let cut: String = slug.chars().take(max).collect();
    let next_is_separator = slug.chars().nth(max) == Some(separator);
    let cut = if next_is_separator {
        cut.as_str()
    } else {
        match cut.rfind(separator) {
            Some(at) if cut[..at].chars().count() >= max / 2 => &cut[..at],
            _ => cut.as_str(),
        }
    };
    cut.trim_end_matches(separator).to_owned()
}

/// ASCII spelling of a lowercase accented Latin letter, when there is an obvious one.
fn fold(c: char) -> Option<&'static str> {
    let ascii = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    };
    Some(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_prefers_a_word_boundary() {
        assert_eq!(truncate_slug("abcd-efgh", 7, '-'), "abcd");
        assert_eq!(truncate_slug("abcd-efgh", 4, '-'), "abcd");
        assert_eq!(truncate_slug("abcdefgh", 4, '-'), "abcd");
        assert_eq!(truncate_slug("a-bcdefgh", 6, '-'), "a-bcde");
    }
}
