//! Signed bearer tokens for the JSON API (and, later, WebSocket connects).
//!
//! Format: `lb1.<payload>.<signature>`, both parts URL-safe base64; the payload is `{"uid":…,"exp":…}` and the
//! signature is HMAC-SHA256 over `lb1.<payload>` with the server's secret key base. Tokens are stateless; the user is
//! loaded on every request, so a deleted user's or changed role's tokens follow at once.

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

    /// A token for user `user_id` that expires at `expires_at` (ms since the Unix epoch).
    pub fn sign(&self, user_id: i64, expires_at: i64) -> String {
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Claims { uid: user_id, exp: expires_at }).unwrap_or_default());
        let signed_part = format!("{PREFIX}{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&signed_part).finalize().into_bytes());
        format!("{signed_part}.{signature}")
    }

    /// The user id of a valid, unexpired token at time `now` (ms since the Unix epoch).
    pub fn verify(&self, token: &str, now: i64) -> Option<i64> {
        let rest = token.strip_prefix(PREFIX)?;
        let (payload, signature) = rest.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // verify_slice compares in constant time.
        self.mac(&format!("{PREFIX}{payload}")).verify_slice(&signature).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now).then_some(claims.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_until_it_expires_and_only_with_its_key() {
        let signer = TokenSigner::new("secret one");
        let token = signer.sign(7, 1_000);
        assert_eq!(signer.verify(&token, 999), Some(7));
        assert_eq!(signer.verify(&token, 1_000), None, "expired");
        assert_eq!(TokenSigner::new("secret two").verify(&token, 0), None, "another key");
        let forged = token.replace(&token[4..10], "AAAAAA");
        assert_eq!(signer.verify(&forged, 0), None, "a changed payload fails the signature");
        assert_eq!(signer.verify("garbage", 0), None);
    }
}
