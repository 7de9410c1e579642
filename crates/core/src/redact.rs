//! Redaction of what must never reach a log line, a stored error or an email: the
//! user-info of URLs (`https://user:token@host/…` → `https://***@host/…`), and known secret
//! values — as written, and in the encodings a job hands text back in without meaning to
//! or on purpose (base64 at every alignment, standard and URL-safe; hex; percent-encoding).

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
    /// Secret values and their encodings, longest first (so a secret that contains another
    /// is cut whole).
    secrets: Vec<String>,
    /// The longest secret value (chars): how much of a clipped text's start may be the end
    /// of one.
    longest: usize,
}

/// Shortest secret whose encodings are redacted too (a shorter one's base64 core is a few
/// characters that would shred ordinary text).
const MIN_ENCODED: usize = 8;

/// The spellings of `secret` that must not appear either: base64 (standard and URL-safe)
/// of the secret at each of the three byte alignments inside a longer encoded text — the
/// characters that depend only on the secret's bytes — hex in both cases, and
/// percent-encoding.
fn encodings(secret: &str) -> Vec<String> {
    use data_encoding::{BASE64, BASE64URL, HEXLOWER, HEXUPPER};
    let bytes = secret.as_bytes();
    let mut out = vec![HEXLOWER.encode(bytes), HEXUPPER.encode(bytes)];
    for k in 0..3usize {
        let mut padded = vec![0u8; k];
        padded.extend_from_slice(bytes);
        // Characters fully determined by the secret: from ceil(8k/6) to floor(8(k+n)/6).
        let (from, to) = ((8 * k).div_ceil(6), 8 * (k + bytes.len()) / 6);
        for engine in [&BASE64, &BASE64URL] {
            let enc = engine.encode(&padded);
            if let Some(core) = enc.get(from..to) {
                out.push(core.to_string());
            }
        }
    }
    let percent: String = bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
                (*b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if percent != secret {
        out.push(percent);
    }
    out
}

impl Redactor {
    /// A redactor of these values (values shorter than 4 characters are ignored: they
    /// would shred ordinary text and protect nothing).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let values: Vec<String> = values.into_iter().filter(|v| v.chars().count() >= 4).collect();
        let longest = values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
        let encoded: Vec<String> =
            values.iter().filter(|v| v.len() >= MIN_ENCODED).flat_map(|v| encodings(v)).collect();
        let mut secrets = values;
        secrets.extend(encoded);
        // Longest first; equal ones adjacent, so `dedup` removes every repeat.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets, longest }
    }

    /// The tail of a longer text (its start cut off) without secrets: its first characters
    /// may be the end of a secret cut in two, which no match finds, so as many characters
    /// as the longest secret has are dropped from its start (replaced by `…`).
    pub fn redact_tail(&self, text: &str) -> String {
        if self.longest == 0 {
            return self.redact(text);
        }
        let rest: String = text.chars().skip(self.longest).collect();
        format!("…{}", self.redact(&rest))
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
    fn a_secret_handed_back_encoded_is_redacted_too() {
        use data_encoding::{BASE64, HEXLOWER};
        let secret = "sk-ant-api03-Zq9fXr2LmN";
        let r = Redactor::new([secret.to_string()]);
        // base64 of the secret alone, and inside a longer encoded text at every alignment
        for prefix in ["", "a", "ab", "abc"] {
            let encoded = BASE64.encode(format!("{prefix}{secret} and more").as_bytes());
            let out = r.redact(&format!("here: {encoded}"));
            assert!(out.contains(REDACTED), "{prefix:?}: {out}");
        }
        assert_eq!(r.redact(&HEXLOWER.encode(secret.as_bytes())), REDACTED);
        assert_eq!(r.redact("url=sk-ant-api03-Zq9fXr2LmN%20x"), "url=[redacted]%20x");
        // a file name holding the secret
        assert_eq!(r.redact(&format!("notes/{secret}.txt")), "notes/[redacted].txt");
        // a tail that starts inside the secret loses its start
        let tail = &format!("xx {secret} yy")[8..];
        assert!(!r.redact_tail(tail).contains("Zq9fXr2LmN"), "{}", r.redact_tail(tail));
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
