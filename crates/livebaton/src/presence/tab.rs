//! Browser tab ids: what a client may send as its tab's identity.
//!
//! A tab id is part of an editing presence's meta, so it is broadcast to every member of the session in every diff
//! that mentions the tab; it is also the key under which a reloading tab reclaims its place. A client chooses it, so it
//! is bounded and plain: every byte of it is repeated in every diff to every member of the session.

/// The longest tab id accepted. The bundled client sends 32 hex digits.
pub const MAX_TAB_ID_LEN: usize = 64;

/// A tab id that is not 1 to [`MAX_TAB_ID_LEN`] characters of `A-Z a-z 0-9 _ -`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid tab_id: 1 to 64 characters of A-Z a-z 0-9 _ -")]
pub struct InvalidTabId;

/// Checks a tab id sent by a client.
///
/// # Errors
/// [`InvalidTabId`] unless it is 1 to [`MAX_TAB_ID_LEN`] characters of `A-Z a-z 0-9 _ -`.
pub fn validate_tab_id(tab_id: &str) -> Result<(), InvalidTabId> {
    let plain = |byte: &u8| byte.is_ascii_alphanumeric() || *byte == b'_' || *byte == b'-';
    if (1..=MAX_TAB_ID_LEN).contains(&tab_id.len()) && tab_id.bytes().all(|byte| plain(&byte)) {
        Ok(())
    } else {
        Err(InvalidTabId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_tab_ids_are_valid() {
        assert_eq!(validate_tab_id("0123456789abcdef0123456789abcdef"), Ok(()));
        assert_eq!(validate_tab_id("tab_1-A"), Ok(()));
        assert_eq!(validate_tab_id(&"a".repeat(64)), Ok(()));
        assert_eq!(validate_tab_id(&"a".repeat(65)), Err(InvalidTabId));
        assert_eq!(validate_tab_id(""), Err(InvalidTabId));
        for bad in ["a/b", "a b", "<script>", "tab\u{e9}", "a\"b"] {
            assert_eq!(validate_tab_id(bad), Err(InvalidTabId), "{bad:?}");
        }
    }
}
