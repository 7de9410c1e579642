//! The instruction: the new text of a message, with quoted history and signatures removed.
//!
//! Mail clients quote in a handful of shapes; we cut at the first line that starts one:
//! an attribution line (`On … wrote:` in several languages, possibly wrapped over two
//! lines), an Outlook header block (`From:` followed by `Sent:`/`Date:` within 4 lines),
//! an `-----Original Message-----` or `____` separator, a forwarded-message marker, or a
//! run of `>` quoted lines. Signatures are cut at the RFC 3676 `-- ` delimiter or at a
//! known mobile footer (`Sent from my iPhone`, …).

/// Verbs of an attribution line (lower-cased); the line also ends with `:`.
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",      // en
    "a écrit",    // fr
    "schrieb",    // de ("Am … schrieb Ann <a@b>:")
    "escribió",   // es
    "ha scritto", // it
    "schreef",    // nl
    "escreveu",   // pt
    "skrev",      // sv, da, no
    "napisał",    // pl
    "написал",    // ru
    "kirjoitti",  // fi
    "yazdı",      // tr
];

/// Attribution prefixes that start a quote header line (lower-cased).
const ATTRIBUTION_STARTS: &[&str] =
    &["on ", "le ", "am ", "el ", "il ", "op ", "em ", "den ", "dnia ", "w dniu ", "el día ", "в ", "22", "20"];

/// Header names that open an Outlook-style quoted header block (lower-cased).
const FROM_HEADERS: &[&str] = &["from:", "de :", "de:", "von:", "da:", "van:", "från:", "от:"];
/// Header names that follow `From:` in such a block.
const BLOCK_HEADERS: &[&str] =
    &["sent:", "date:", "envoyé :", "envoyé:", "gesendet:", "enviado:", "inviato:", "verzonden:", "to:", "subject:"];

/// Separators that start quoted history on their own line (lower-cased, trimmed).
const SEPARATORS: &[&str] = &[
    "-----original message-----",
    "----- original message -----",
    "-------- original message --------",
    "-------- message d'origine --------",
    "-----ursprüngliche nachricht-----",
    "begin forwarded message:",
    "---------- forwarded message ---------",
];

/// Mobile and client footers that end the new text (lower-cased prefixes).
const FOOTERS: &[&str] = &[
    "sent from my ",
    "sent from outlook",
    "sent from mail for windows",
    "get outlook for ",
    "envoyé de mon ",
    "von meinem ",
    "enviado desde mi ",
    "inviato da ",
];

fn is_attribution(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    l.ends_with(':')
        && ATTRIBUTION_VERBS.iter().any(|v| l.contains(v))
        && ATTRIBUTION_STARTS.iter().any(|s| l.starts_with(s))
}

fn starts_header_block(lines: &[&str], i: usize) -> bool {
    let first = lines[i].trim().to_lowercase();
    if !FROM_HEADERS.iter().any(|h| first.starts_with(h)) {
        return false;
    }
    lines[i + 1..].iter().take(4).any(|l| {
        let l = l.trim().to_lowercase();
        BLOCK_HEADERS.iter().any(|h| l.starts_with(h))
    })
}

/// Index of the first line of quoted history or signature, if any.
fn cut_index(lines: &[&str]) -> Option<usize> {
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        let lower = line.to_lowercase();
        if raw.trim_end() == "--" && raw.starts_with("--") || raw.trim_end_matches(['\r']) == "-- " {
            return Some(i);
        }
        if line.starts_with('>') {
            return Some(i);
        }
        if SEPARATORS.contains(&lower.as_str()) || (line.len() >= 20 && line.chars().all(|c| c == '_')) {
            return Some(i);
        }
        if FOOTERS.iter().any(|f| lower.starts_with(f)) && line.len() < 80 {
            return Some(i);
        }
        if is_attribution(line) {
            return Some(i);
        }
        // Gmail wraps long attribution lines: "On Mon, … <ann@\nexample.com> wrote:".
        if let Some(next) = lines.get(i + 1) {
            if !line.is_empty() && is_attribution(&format!("{line} {}", next.trim())) {
                return Some(i);
            }
        }
        if starts_header_block(lines, i) {
            return Some(i);
        }
    }
    None
}

/// Extracts the new text of a message body. Pure and total: any input gives a string.
pub fn extract_instruction(body: &str) -> String {
    let normalised = body.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let end = cut_index(&lines).unwrap_or(lines.len());
    let kept = lines[..end].join("\n");
    kept.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::extract_instruction as x;
    use proptest::prelude::*;

    #[test]
    fn cases() {
        let table = [
            ("Do it.\n\nOn Mon, 1 Jan 2026 at 10:00, Ann <a@b.c> wrote:\n> old", "Do it."),
            ("Do it.\nOn Mon, 1 Jan 2026 at 10:00, Ann Long Name <ann@\nexample.com> wrote:\n> old", "Do it."),
            ("Fais-le.\n\nLe lun. 1 janv. 2026 à 10:00, Ann <a@b.c> a écrit :\n> vieux", "Fais-le."),
            ("Mach es.\n\nAm 01.01.2026 um 10:00 schrieb Ann <a@b.c>:\n> alt", "Mach es."),
            ("Hazlo.\n\nEl lun, 1 ene 2026 a las 10:00, Ann (<a@b.c>) escribió:\n> viejo", "Hazlo."),
            ("Do it.\n\n-----Original Message-----\nFrom: x", "Do it."),
            ("Do it.\n________________________________\nFrom: Ann\nSent: Monday", "Do it."),
            ("Do it.\n\nFrom: Ann <a@b.c>\nSent: Monday, 1 January\nTo: x\nSubject: y", "Do it."),
            ("Do it.\n\n-- \nAnn\nCEO", "Do it."),
            ("Do it.\n\nSent from my iPhone", "Do it."),
            ("Line one.\nLine two.", "Line one.\nLine two."),
            ("> quoted only", ""),
            (
                "Please fix the From: field label on the contact page.",
                "Please fix the From: field label on the contact page.",
            ),
        ];
        for (input, want) in table {
            assert_eq!(x(input), want, "input: {input:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_never_grows(s in "\\PC{0,400}") {
            let out = x(&s);
            prop_assert!(out.len() <= s.len() + 1);
        }

        #[test]
        fn plain_prose_is_kept(s in "[A-Za-z ,.]{1,200}") {
            prop_assume!(!s.trim().is_empty());
            prop_assert_eq!(x(&s), s.trim());
        }
    }
}
