//! Masking of secrets in everything ferrotail prints: logs, error messages, `Debug` output,
//! `-print-config-stderr`, `-dry-run` and the `/config` page.
//!
//! Invariant: a secret is replaced by [`MASK`] (Promtail's `<secret>`) before it reaches any
//! text meant for a human. The config module masks whole YAML trees by key name (see
//! `config::print`); this module holds the pieces shared with the runtime code: URLs with
//! `user:password@`, header names whose values are credentials, and PEM key errors.

use std::fmt;

/// The text that replaces every secret (Promtail's, from prometheus-common's `Secret`).
pub const MASK: &str = "<secret>";

/// `url` with the password of its `user:password@` part replaced by [`MASK`]; anything else is
/// kept, including a user name alone (Go's `url.Redacted` does the same). Works on text that
/// does not parse as a URL too, since invalid URLs are echoed in error messages.
pub fn url(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{MASK}{}",
        &url[..authority_start + colon + 1],
        &url[authority_start + at..]
    )
}

/// Whether a header with this name carries a credential (`Authorization`, `X-Api-Key`,
/// `Cookie`, anything naming a token, secret or password). Such values are masked wherever
/// headers are printed; `X-Scope-OrgID` and other plain headers are shown.
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "token",
        "secret",
        "password",
        "key",
        "cookie",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// What is wrong with a PEM private key, without the text the PEM parser quotes in its error (a
/// line of the file, as byte values), which could be key material.
pub fn pem_key_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no PEM private key found",
        Error::Io(_) => "the key could not be read",
        _ => "not a valid PEM private key",
    }
}

/// `Debug` for a list of `(name, value)` headers, sensitive values masked.
pub struct Headers<'a, N, V>(pub &'a [(N, V)]);

impl<N: AsRef<str>, V: fmt::Debug> fmt::Debug for Headers<'_, N, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.0 {
            let name = name.as_ref();
            if is_sensitive_header(name) {
                list.entry(&(name, MASK));
            } else {
                list.entry(&(name, value));
            }
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_password_is_masked() {
        assert_eq!(
            url("https://123:glc_abc@logs.example.net/loki/api/v1/push"),
            "https://123:<secret>@logs.example.net/loki/api/v1/push"
        );
        assert_eq!(url("http://user@host/x"), "http://user@host/x");
        assert_eq!(url("http://host:3100/x"), "http://host:3100/x");
        assert_eq!(url("http://u:p@host"), "http://u:<secret>@host");
        assert_eq!(url("http://u:p:q@host?a=b"), "http://u:<secret>@host?a=b");
        // Text that is not a valid URL is masked all the same.
        assert_eq!(url("u:hunter2@host/x"), "u:<secret>@host/x");
        assert_eq!(
            url("http://u:hunter2@host:99999/x"),
            "http://u:<secret>@host:99999/x"
        );
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn sensitive_headers_are_masked_in_debug() {
        let h = vec![
            ("Authorization".to_owned(), "Bearer hunter2".to_owned()),
            ("X-Api-Key".to_owned(), "hunter3".to_owned()),
            ("X-Scope-OrgID".to_owned(), "tenant1".to_owned()),
        ];
        let out = format!("{:?}", Headers(&h));
        assert!(!out.contains("hunter"), "{out}");
        assert!(out.contains("tenant1") && out.contains(MASK), "{out}");
    }
}
