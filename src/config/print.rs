//! The effective config as YAML with secrets masked (`-print-config-stderr`, `-dry-run`,
//! `/config`), and the `Debug` output of every config type that can hold a secret.
//!
//! Masking works on the serialized tree by key name, so it also covers sections kept as raw YAML
//! (e.g. a kafka `password` or a cloudflare `api_token`). Pipeline stages are printed as written:
//! their keys name extracted fields, not credentials.
//!
//! `Debug` of [`Config`], [`ClientConfig`], the HTTP client blocks, [`ServerConfig`] and
//! [`ScrapeConfig`] prints that same masked tree, so a `{:?}` in a log line, an error or a
//! panic message shows exactly what `/config` shows and never a secret.

use std::fmt;

use serde::Serialize;
use serde_yaml::Value;

use super::{
    Authorization, BasicAuth, ClientConfig, Config, HttpHeader, OAuth2, ScrapeConfig, ServerConfig,
    ServerTlsConfig, TlsConfig,
};
use crate::redact::{self, MASK};

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
                            *s = redact::url(s);
                        }
                    }
                    "headers" => {
                        if let Value::Mapping(h) = child {
                            for (name, value) in h.iter_mut() {
                                if name.as_str().is_some_and(redact::is_sensitive_header) {
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

/// The masked tree of `v`.
fn masked_tree<T: Serialize>(v: &T) -> Result<Value, serde_yaml::Error> {
    let mut tree = serde_yaml::to_value(v)?;
    mask(&mut tree);
    Ok(tree)
}

fn debug_masked<T: Serialize>(name: &str, v: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match masked_tree(v) {
        Ok(tree) => f.debug_tuple(name).field(&tree).finish(),
        // Never fall back to the fields themselves: they hold the secrets.
        Err(e) => write!(f, "{name}(<not printable: {e}>)"),
    }
}

/// `Debug` through the masked tree, for types that can hold a secret.
macro_rules! masked_debug {
    ($($t:ident),* $(,)?) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                debug_masked(stringify!($t), self, f)
            }
        }
    )*};
}

masked_debug!(
    ClientConfig,
    BasicAuth,
    Authorization,
    OAuth2,
    HttpHeader,
    TlsConfig,
    ServerConfig,
    ServerTlsConfig,
    ScrapeConfig,
);

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Config");
        match masked_tree(self) {
            Ok(tree) => d.field("yaml", &tree),
            Err(e) => d.field("yaml", &format_args!("<not printable: {e}>")),
        };
        // The fields YAML does not carry.
        d.field("warnings", &self.warnings)
            .field("inspect", &self.inspect)
            .finish()
    }
}

pub(super) fn to_yaml_masked(cfg: &Config) -> String {
    match masked_tree(cfg) {
        Ok(tree) => serde_yaml::to_string(&tree)
            .unwrap_or_else(|e| format!("# cannot print the config: {e}\n")),
        Err(e) => format!("# cannot print the config: {e}\n"),
    }
}
