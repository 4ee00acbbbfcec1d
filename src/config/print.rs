//! The effective config as YAML with secrets masked (`-print-config-stderr`, `-dry-run`).
//!
//! Masking works on the serialized tree by key name, so it also covers sections kept as raw YAML
//! (e.g. a kafka `password` or a cloudflare `api_token`). Pipeline stages are printed as written:
//! their keys name extracted fields, not credentials.

use serde_yaml::Value;

use super::Config;

/// The text that replaces every secret.
pub const MASK: &str = "<secret>";

/// Keys whose (string) value is a secret wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "client_certificate_key",
    "key",
    "api_token",
    "connection_string",
];

/// Header names whose values are credentials.
fn is_sensitive_header(name: &str) -> bool {
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

/// Replaces the password of a URL's `user:password@` part.
fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_len = url[authority_start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - authority_start);
    let authority = &url[authority_start..authority_start + authority_len];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}{}{}",
        &url[..authority_start + colon + 1],
        MASK,
        &authority[at..],
        &url[authority_start + authority_len..]
    )
}

fn mask_all_strings(v: &mut Value) {
    match v {
        Value::String(s) if !s.is_empty() => *s = MASK.to_owned(),
        Value::Sequence(items) => items.iter_mut().for_each(mask_all_strings),
        Value::Mapping(m) => m.values_mut().for_each(mask_all_strings),
        _ => {}
    }
}

fn mask(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m.iter_mut() {
                let Some(key) = k.as_str() else {
                    mask(child);
                    continue;
                };
                match key {
                    "pipeline_stages" => {}
                    "secrets" | "proxy_connect_header" => mask_all_strings(child),
                    "url" | "proxy_url" => {
                        if let Value::String(s) = child {
                            *s = mask_url(s);
                        }
                    }
                    "headers" => {
                        if let Value::Mapping(h) = child {
                            for (name, value) in h.iter_mut() {
                                if name.as_str().is_some_and(is_sensitive_header) {
                                    mask_all_strings(value);
                                }
                            }
                        }
                    }
                    _ if SECRET_KEYS.contains(&key) => {
                        if let Value::String(s) = child {
                            if !s.is_empty() {
                                *s = MASK.to_owned();
                            }
                        } else {
                            mask(child);
                        }
                    }
                    _ => mask(child),
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(mask),
        Value::Tagged(t) => mask(&mut t.value),
        _ => {}
    }
}

pub(super) fn to_yaml_masked(cfg: &Config) -> String {
    let mut tree = match serde_yaml::to_value(cfg) {
        Ok(v) => v,
        Err(e) => return format!("# cannot print the config: {e}\n"),
    };
    mask(&mut tree);
    serde_yaml::to_string(&tree).unwrap_or_else(|e| format!("# cannot print the config: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn url_password_is_masked() {
        assert_eq!(
            mask_url("https://123:glc_abc@logs.example.net/loki/api/v1/push"),
            "https://123:<secret>@logs.example.net/loki/api/v1/push"
        );
        assert_eq!(mask_url("http://user@host/x"), "http://user@host/x");
        assert_eq!(mask_url("http://host:3100/x"), "http://host:3100/x");
        assert_eq!(mask_url("http://u:p@host"), "http://u:<secret>@host");
    }
}
