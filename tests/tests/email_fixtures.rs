//! Real-world replies from different mail clients: the extracted instruction is the new
//! text only. Pure parsing, no emulator.

use switchyard_core::email::parse_email;
use switchyard_core::inbound::{inbound_from_email, ThreadHint};
use switchyard_core::project::Verdict;

const FIXTURES: &[(&str, &str)] = &[
    ("gmail.eml", "Make the logo bigger, please."),
    ("outlook.eml", "Please add a contact form to the about page."),
    ("outlook-original.eml", "Change the price to 20 € on the shop page."),
    ("apple-mail.eml", "Use the darker green from the brand guide."),
    ("thunderbird.eml", "Fix the typo in the footer (\"Copyrigth\")."),
    ("iphone.eml", "Looks good. Now make the menu sticky."),
    ("android.eml", "Remove the carousel from the homepage."),
    ("french.eml", "Mettez le titre en gras, s'il vous plaît."),
    ("german.eml", "Bitte die Schriftgröße im Footer verkleinern."),
    ("spanish.eml", "Cambia el color del botón a rojo."),
    ("html-only.eml", "Add alt text to every image."),
    ("japanese.eml", "ロゴを大きくしてください。"),
    ("yahoo-attachment.eml", "Use the attached logo in the header."),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/emails/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn instructions_from_real_clients() {
    for (name, want) in FIXTURES {
        let parsed = parse_email(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.instruction, *want, "{name}");
        assert_eq!(parsed.from, "ann@example.com", "{name}");
    }
}

#[test]
fn fixtures_thread_by_recipient_token_and_summarise_attachments() {
    for (name, _) in FIXTURES {
        let e = inbound_from_email(&fixture(name), Verdict::Pass, Verdict::Pass).unwrap();
        match &e.inbound.thread {
            ThreadHint::Email { token, candidates } => {
                assert_eq!(token.as_ref().map(|t| t.as_str()), Some("abcdefgh"), "{name}");
                assert_eq!(candidates.first().map(String::as_str), Some("sy-1@switchyard"), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let with_attachment = parse_email(&fixture("yahoo-attachment.eml")).unwrap();
    assert_eq!(with_attachment.attachments.len(), 1);
    assert_eq!(with_attachment.attachments[0].name.as_deref(), Some("logo.png"));
    assert_eq!(with_attachment.attachments[0].content_type, "image/png");
    assert_eq!(with_attachment.attachments[0].size, 1008);
}
