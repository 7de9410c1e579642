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

#[cfg(test)]
mod tests {
    use super::*;

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
