//! Placeholder expansion in scenario strings: `{frontend}`, `{frontend.port}`, `{heartbeat_ms}`,
//! `{frontend.via.client}` (the address of a link's fault proxy).
//!
//! Pure string work, so every rule is unit-tested here: an endpoint name expands to
//! `tcp://127.0.0.1:PORT`, `name.port` to the bare port, a variable to its value; `{{` and `}}`
//! are literal braces; anything else in braces is an error naming the placeholder.

use anyhow::bail;
use std::collections::BTreeMap;

/// What placeholders expand to in one run.
#[derive(Debug, Clone, Default)]
pub struct Values {
    /// Endpoint name (or link name, `endpoint.via.process`) → port on 127.0.0.1.
    pub ports: BTreeMap<String, u16>,
    /// Variable name → value.
    pub vars: BTreeMap<String, String>,
}

impl Values {
    /// The expansion of one placeholder (the text between the braces).
    fn lookup(&self, key: &str) -> Option<String> {
        if let Some(port) = self.ports.get(key) {
            return Some(format!("tcp://127.0.0.1:{port}"));
        }
        if let Some(port) = key
            .strip_suffix(".port")
            .and_then(|name| self.ports.get(name))
        {
            return Some(port.to_string());
        }
        self.vars.get(key).cloned()
    }

    /// Expands every placeholder of `text`.
    pub fn expand(&self, text: &str) -> anyhow::Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{") {
                out.push('{');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                out.push('}');
                rest = after;
            } else if tail.starts_with('}') {
                bail!("unmatched '}}' in {text:?} (write '}}}}' for a literal brace)");
            } else {
                let Some(end) = tail.find('}') else {
                    bail!("unclosed '{{' in {text:?} (write '{{{{' for a literal brace)");
                };
                let key = &tail[1..end];
                match self.lookup(key) {
                    Some(value) => out.push_str(&value),
                    None => bail!(
                        "{{{key}}} in {text:?} is neither an endpoint (`endpoints`, also as \
                         {{name.port}}), a link ({{endpoint.via.process}} of a `[[link]]`) \
                         nor a variable (`[vars]`)"
                    ),
                }
                rest = &tail[end + 1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::default();
        v.ports.insert("frontend".into(), 5555);
        v.vars.insert("heartbeat_ms".into(), "250".into());
        v
    }

    #[test]
    fn endpoint_expands_to_a_tcp_address() {
        assert_eq!(
            values().expand("{frontend}").unwrap(),
            "tcp://127.0.0.1:5555"
        );
    }

    #[test]
    fn port_suffix_expands_to_the_bare_port() {
        assert_eq!(
            values().expand("port={frontend.port}!").unwrap(),
            "port=5555!"
        );
    }

    #[test]
    fn variables_expand_anywhere_in_the_text() {
        assert_eq!(
            values()
                .expand("--hb={heartbeat_ms} and {heartbeat_ms}")
                .unwrap(),
            "--hb=250 and 250"
        );
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(values().expand("{{x}} {{").unwrap(), "{x} {");
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        assert_eq!(values().expand("plain -v").unwrap(), "plain -v");
    }

    #[test]
    fn unknown_and_malformed_placeholders_are_errors() {
        let v = values();
        assert!(v
            .expand("{backend}")
            .unwrap_err()
            .to_string()
            .contains("{backend}"));
        assert!(v.expand("{heartbeat_ms.port}").is_err());
        assert!(v
            .expand("{frontend")
            .unwrap_err()
            .to_string()
            .contains("unclosed"));
        assert!(v
            .expand("x}")
            .unwrap_err()
            .to_string()
            .contains("unmatched"));
    }
}
