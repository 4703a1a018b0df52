//! Signed bearer tokens for the JSON API and WebSocket connects.
//!
//! Format: `lb1.<payload>.<signature>`, both parts URL-safe base64; the payload is `{"uid":…,"exp":…,"gen":…,"tid":…}` and
//! the signature is HMAC-SHA256 over `lb1.<payload>` with the server's secret key base. Tokens are stateless; the user
//! is loaded on every request, so a deleted user's tokens and a changed role follow at once, and `gen` (the user's
//! token generation when the token was issued) must still be the user's: a password or role change moves it, which
//! ends every token issued before (`Store::change_user`).
//!
//! A token without `gen` (issued before generations existed) is refused: tokens last 12 hours, so the upgrade costs a
//! client one new sign-in at most, while accepting them would leave tokens issued before a password change valid.
//! `tid` names the token's row in the store (`api_tokens`), which its owner can revoke on its own; the server refuses
//! a token without one for the same reason (every token it issues has one).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "lb1.";

/// How long an API token lasts.
pub const TOKEN_TTL_MS: i64 = 12 * 60 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct Claims {
    uid: i64,
    exp: i64,
    /// Required: a token from before generations existed does not parse, and is refused.
    #[serde(rename = "gen")]
    generation: i64,
    /// The token's id in the store; absent in tokens issued before tokens had ids.
    #[serde(rename = "tid", default, skip_serializing_if = "Option::is_none")]
    token_id: Option<i64>,
}

/// Who a valid token names, and the user's token generation it was issued at (compare it with the user's current
/// `token_generation`: a token of another generation is revoked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bearer {
    /// The user id.
    pub user_id: i64,
    /// The user's token generation when the token was issued.
    pub generation: i64,
    /// The token's id in the store (`None` for a token issued before ids: refused by the server).
    pub token_id: Option<i64>,
}

/// Signs and checks tokens with the secret key base.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    /// A signer keyed by `secret_key_base`.
    pub fn new(secret_key_base: &str) -> Self {
        TokenSigner { key: secret_key_base.as_bytes().to_vec() }
    }

    fn mac(&self, signed_part: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(signed_part.as_bytes());
        mac
    }

    /// The token `token_id` (its row in the store) of user `user_id` at token generation `generation`, expiring at
    /// `expires_at` (ms since the Unix epoch). The server issues tokens through `AppState::issue_token`, which stores
    /// the row first.
    pub fn sign(&self, user_id: i64, generation: i64, token_id: i64, expires_at: i64) -> String {
        self.sign_claims(&Claims { uid: user_id, exp: expires_at, generation, token_id: Some(token_id) })
    }

    fn sign_claims(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signed_part = format!("{PREFIX}{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&signed_part).finalize().into_bytes());
        format!("{signed_part}.{signature}")
    }

    /// The user id and generation of a valid, unexpired token at time `now` (ms since the Unix epoch). Whether the
    /// generation is still the user's is the caller's check (it needs the store).
    pub fn verify(&self, token: &str, now: i64) -> Option<Bearer> {
        let rest = token.strip_prefix(PREFIX)?;
        let (payload, signature) = rest.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // verify_slice compares in constant time.
        self.mac(&format!("{PREFIX}{payload}")).verify_slice(&signature).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now).then_some(Bearer {
            user_id: claims.uid,
            generation: claims.generation,
            token_id: claims.token_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_until_it_expires_and_only_with_its_key() {
        let signer = TokenSigner::new("secret one");
        let token = signer.sign(7, 3, 11, 1_000);
        assert_eq!(signer.verify(&token, 999), Some(Bearer { user_id: 7, generation: 3, token_id: Some(11) }));
        assert_eq!(signer.verify(&token, 1_000), None, "expired");
        assert_eq!(TokenSigner::new("secret two").verify(&token, 0), None, "another key");
        let forged = token.replace(&token[4..10], "AAAAAA");
        assert_eq!(signer.verify(&forged, 0), None, "a changed payload fails the signature");
        assert_eq!(signer.verify("garbage", 0), None);
    }

    #[test]
    fn a_token_from_before_ids_has_none() {
        let signer = TokenSigner::new("secret one");
        let token = signer.sign_claims(&Claims { uid: 7, exp: 1_000, generation: 2, token_id: None });
        assert_eq!(signer.verify(&token, 0), Some(Bearer { user_id: 7, generation: 2, token_id: None }));
    }

    #[test]
    fn a_token_from_before_generations_is_refused() {
        let signer = TokenSigner::new("secret one");
        // Signed exactly as the code before generations signed: {"uid","exp"} only.
        let payload = URL_SAFE_NO_PAD.encode(br#"{"uid":7,"exp":1000}"#);
        let signed_part = format!("{PREFIX}{payload}");
        let signature = URL_SAFE_NO_PAD.encode(signer.mac(&signed_part).finalize().into_bytes());
        assert_eq!(signer.verify(&format!("{signed_part}.{signature}"), 0), None);
    }
}
