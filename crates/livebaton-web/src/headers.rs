//! Security headers on every response: what the browser may load and run on our pages, and what it may keep.
//!
//! The Content-Security-Policy allows scripts and styles only from our own origin, with no `'unsafe-inline'`: the page
//! frame links the stylesheet and the client (`/assets/…`) and carries no inline `<script>`, `<style>` or `style=`.
//! So even markup that slipped past the sanitiser cannot run a script or restyle the page. Rich text may show images
//! from anywhere over https. Pages cannot be framed (`frame-ancestors 'none'`, against clickjacking).
//!
//! Responses that say nothing about caching are `no-store`: live pages show private data and carry tokens, and must
//! not be kept by the browser or a proxy. The assets set their own (cache for ever: their paths change with their
//! content). [`crate::app::LiveApp`] applies these to its routes; an application applies them to its own with
//! [`with_security_headers`], or chooses its own policy with [`with_security_headers_and_policy`].

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy every page is served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' https: data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; \
     object-src 'none'; frame-ancestors 'none'";

/// Adds the security headers to every response of `router`, with [`CONTENT_SECURITY_POLICY`]. The policy headers
/// replace whatever a handler set, so no handler can weaken them; `Cache-Control` is set only where the handler said
/// nothing (the assets say "for ever").
pub fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    with_security_headers_and_policy(router, CONTENT_SECURITY_POLICY)
}

/// [`with_security_headers`] with the application's own Content-Security-Policy (keep `script-src` and
/// `connect-src` allowing `'self'`: the client's script and its socket need them).
pub fn with_security_headers_and_policy<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    content_security_policy: &'static str,
) -> Router<S> {
    let policy: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, content_security_policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    let router = policy.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)))
    });
    router.layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}
