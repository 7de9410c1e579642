//! Redaction of what must never reach a log line, a stored error or an email: the
//! user-info of URLs (`https://user:token@host/…` → `https://***@host/…`).

/// `text` with the user-info of every `scheme://user[:pass]@host` URL replaced by `***`.
pub fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; user-info is before its last '@'.
        let end = tail.find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// What replaces a secret value in any text we store, log or send.
pub const REDACTED: &str = "[redacted]";

/// Redacts known secret values (and URL user-info) from text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Secret values, longest first (so a secret that contains another is cut whole).
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor of these values (values shorter than 4 characters are ignored: they
    /// would shred ordinary text and protect nothing).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values.into_iter().filter(|v| v.chars().count() >= 4).collect();
        secrets.sort_by_key(|v| std::cmp::Reverse(v.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` without any secret value or URL user-info.
    pub fn redact(&self, text: &str) -> String {
        let mut out = redact_url_userinfo(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_redacted_wherever_they_appear() {
        let r = Redactor::new(["sk-ant-123456".to_string(), "sk-ant-123456-long".to_string(), "ab".to_string()]);
        assert_eq!(r.redact("key sk-ant-123456-long and sk-ant-123456, ab"), "key [redacted] and [redacted], ab");
        assert_eq!(r.redact("push to https://u:sk-ant-123456@h/x"), "push to https://***@h/x");
    }

    #[test]
    fn user_info_is_removed_wherever_a_url_appears() {
        let table = [
            (
                "fatal: unable to access 'https://ann:tok3n@git.example/x.git/': 403",
                "fatal: unable to access 'https://***@git.example/x.git/': 403",
            ),
            (
                "https://x-access-token:abc@github.com/a/b https://ok.example/c",
                "https://***@github.com/a/b https://ok.example/c",
            ),
            ("ssh://git@host/repo", "ssh://***@host/repo"),
            ("no url here", "no url here"),
            ("mail ann@corp.example about https://host/p@x", "mail ann@corp.example about https://host/p@x"),
        ];
        for (input, want) in table {
            assert_eq!(redact_url_userinfo(input), want, "{input}");
        }
    }
}
