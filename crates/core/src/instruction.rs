//! The instruction: the new text of a message, with quoted history and signatures removed.
//!
//! The instruction is what the agent acts on, so losing the sender's words is worse than
//! leaving noise in. Each line is put in a class, and each class has one rule:
//!
//! - **Quote headers** (`On … wrote:` in many languages and clients, wrapped over up to three
//!   lines; Gmail's language-free `date name <address>:`; Zoho's `---- On … wrote ----`) open
//!   a `>`-quoted block; **`>`-quoted blocks** before any new text (bottom posting) and after
//!   the last new text are removed, blocks between pieces of new text (inline answers) are
//!   kept as their context.
//! - **History** runs to the end: an Outlook header block (`From:`/`Sent:`/`To:`/`Subject:`
//!   or their translations, plain or bold, in any order), an `-----Original Message-----`
//!   separator in any language, an underscore rule, or a quote header followed by no quoted
//!   lines at all.
//! - **Forwarded messages are content**: from a forwarded-message marker (or an Outlook
//!   header block whose subject is `FW:`/`Fwd:`/…) everything is kept verbatim.
//! - **Signatures** are cut only at the end of the sender's own text: the `-- ` delimiter,
//!   a known mobile/app footer line (`Sent from my iPhone`, in its known forms only), a
//!   valediction followed by a short name block, a `-Name` line after a blank line.
//! - **Never lose everything**: if the rules leave nothing, or only a greeting, the whole
//!   top part (the text above the history) is used, and the fallback is recorded.
//!
//! [`extract`] reports which rule cut where, for `switchyard email inspect`.

use serde::{Deserialize, Serialize};

/// Why lines were removed (or, for [`Rule::Fallback`], restored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A quote header with its `>` block before the new text (bottom posting).
    LeadingQuote,
    /// A `>`-quoted block (with its quote header) after the last new text.
    TrailingQuote,
    /// A quote header with no quoted lines after it: history to the end.
    QuoteHeader,
    /// An Outlook-style header block: history to the end.
    HeaderBlock,
    /// `-----Original Message-----` or an underscore rule: history to the end.
    Separator,
    /// The `-- ` signature delimiter.
    SignatureDelimiter,
    /// A known mobile or app footer (`Sent from my iPhone`).
    MobileFooter,
    /// A valediction followed by a short name block.
    Valediction,
    /// A `-Name` line after a blank line.
    NameSign,
    /// Nothing (or only a greeting) was left: the whole top part was kept instead.
    Fallback,
}

/// One decision of the extractor, for an operator reading why text was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// The rule.
    pub rule: Rule,
    /// First line it applies to (1-based, in the normalised body).
    pub line: usize,
    /// How many lines it removed (0 for [`Rule::Fallback`]).
    pub lines: usize,
    /// The first line it applies to, shortened.
    pub text: String,
}

/// The extracted instruction and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extraction {
    /// The instruction.
    pub text: String,
    /// Whether the rules left nothing useful and the whole top part was kept.
    pub fallback: bool,
    /// What was cut, in body order.
    pub cuts: Vec<Cut>,
}

/// Verbs (lower-cased) of an attribution line, in the languages of the mail clients we see.
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",             // en
    "a écrit",           // fr
    "schrieb",           // de
    "escribió",          // es
    "ha scritto",        // it
    "schreef",           // nl
    "escreveu",          // pt
    "skrev",             // sv, da, no
    "napisał",           // pl (napisał, napisała, napisał(a))
    "написал",           // ru (написал, написала, написал(а))
    "kirjoitti",         // fi
    "yazdı",             // tr
    "đã viết",           // vi
    "napsal",            // cs (napsal, napsala, napsal(a))
    "ezt írta",          // hu
    "a scris",           // ro
    "έγραψε",            // el
    "写道",              // zh
    "작성",              // ko
    "schreibt",          // de (some clients)
    "kirjutas",          // et
    "rašė",              // lt
    "rakstīja",          // lv
    "написав",           // uk
    "kirjoitti viestin", // fi (Outlook mobile)
    "geschreven",        // nl (Apple Mail: "heeft … het volgende geschreven:")
    "írta",              // hu
    "napisala",          // sl, hr
    "написа",            // bg
];

/// Words that start the first line of a wrapped attribution (lower-cased).
const ATTRIBUTION_STARTS: &[&str] = &[
    "on ", "le ", "am ", "el ", "il ", "op ", "em ", "den ", "dnia ", "w dniu ", "в ", "vào ", "dne ", "pe ",
    "---- on ",
];

/// Header names of an Outlook-style block, by what they are (lower-cased, without `:`).
const FROM_NAMES: &[&str] = &[
    "from",
    "de",
    "von",
    "da",
    "van",
    "från",
    "fra",
    "od",
    "от",
    "lähettäjä",
    "kimden",
    "feladó",
    "afzender",
    "发件人",
    "差出人",
    "người gửi",
    "expéditeur",
    "remetente",
    "nadawca",
    "odesílatel",
    "보낸 사람",
    "від",
];
const OTHER_NAMES: &[&str] = &[
    "sent",
    "date",
    "to",
    "cc",
    "subject",
    "envoyé",
    "à",
    "objet",
    "gesendet",
    "an",
    "betreff",
    "datum",
    "enviado",
    "para",
    "asunto",
    "fecha",
    "inviato",
    "a",
    "oggetto",
    "data",
    "verzonden",
    "aan",
    "onderwerp",
    "skickat",
    "till",
    "ämne",
    "sendt",
    "til",
    "emne",
    "wysłano",
    "do",
    "temat",
    "отправлено",
    "кому",
    "тема",
    "дата",
    "lähetetty",
    "vastaanottaja",
    "aihe",
    "gönderildi",
    "kime",
    "konu",
    "tarih",
    "elküldve",
    "címzett",
    "tárgy",
    "收件人",
    "主题",
    "日期",
    "发送时间",
    "送信日時",
    "宛先",
    "件名",
    "ngày",
    "đến",
    "tiêu đề",
    "assunto",
    "odesláno",
    "komu",
    "předmět",
    "받는 사람",
    "제목",
    "보낸 날짜",
    "надіслано",
    "кому",
    "копия",
    "kopie",
];

/// Subject prefixes of a forwarded message (lower-cased).
const FORWARD_SUBJECTS: &[&str] =
    &["fw:", "fwd:", "wg:", "tr:", "rv:", "i:", "vs:", "vl:", "pd:", "enc:", "trs:", "转发:"];

/// Words of a dashed separator or an Apple marker that mean a forwarded message follows.
const FORWARD_WORDS: &[&str] = &[
    "forward",
    "weitergeleitet",
    "transféré",
    "réexpédié",
    "reenviado",
    "doorgestuurd",
    "vidarebefordrat",
    "videresendt",
    "пересылаемое",
    "пересланное",
    "inoltrato",
    "encaminhada",
    "przekazana",
    "välitetty",
    "转发",
    "転送",
    "iletilen",
    "přeposlaná",
    "továbbított",
    "chuyển tiếp",
    "переслане",
];

/// Words of a dashed separator that mean quoted history follows.
const ORIGINAL_WORDS: &[&str] = &[
    "original",
    "ursprüngliche",
    "d'origine",
    "originale",
    "oorspronkelijk",
    "originalmeddelande",
    "opprinnelig",
    "oprindelig",
    "исходное",
    "alkuperäinen",
    "oryginalna",
    "původní",
    "orijinal",
    "eredeti",
    "原始邮件",
    "元のメッセージ",
];

/// Known mobile and app footers (lower-cased prefixes); a footer line is short and ends the text.
const FOOTERS: &[&str] = &[
    "sent from my ",
    "sent from outlook",
    "sent from mail for windows",
    "sent from yahoo mail",
    "sent from the all new aol app",
    "sent from samsung",
    "sent from proton mail",
    "sent with proton mail",
    "sent from protonmail",
    "sent via superhuman",
    "sent with spark",
    "sent from fastmail",
    "sent from zoho mail",
    "sent from gmail mobile",
    "get outlook for ",
    "download outlook for ",
    "télécharger outlook pour ",
    "obtenir outlook pour ",
    "outlook für ios herunterladen",
    "outlook für android herunterladen",
    "descargar outlook para ",
    "sent with sparrow",
    "envoyé de mon ",
    "envoyé depuis mon ",
    "envoyé à partir de outlook",
    "von meinem ",
    "gesendet von meinem ",
    "gesendet mit der ",
    "enviado desde mi ",
    "enviado de meu ",
    "enviado do meu ",
    "inviato da ",
    "inviato dal mio ",
    "verzonden vanaf mijn ",
    "verstuurd vanaf mijn ",
    "skickat från min ",
    "sendt fra min ",
    "sendt fra outlook",
    "lähetetty ",
    "wysłane z mojego ",
    "wysłane z ",
    "отправлено с ",
    "отправлено из ",
    "iphone'umdan gönderildi",
    "odesláno z ",
    "从我的",
    "iphoneから送信",
    "gửi từ ",
];

/// Valedictions (lower-cased, without trailing punctuation) that can open a signature.
const VALEDICTIONS: &[&str] = &[
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "warmest regards",
    "best wishes",
    "best",
    "all the best",
    "thanks",
    "thank you",
    "many thanks",
    "thanks a lot",
    "thanks so much",
    "thanks again",
    "thx",
    "ty",
    "cheers",
    "sincerely",
    "yours sincerely",
    "yours truly",
    "yours",
    "cordially",
    "talk soon",
    "take care",
    "br",
    "rgds",
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "freundliche grüße",
    "viele grüße",
    "beste grüße",
    "liebe grüße",
    "lg",
    "vg",
    "gruß",
    "grüße",
    "danke",
    "vielen dank",
    "cordialement",
    "bien cordialement",
    "bien à vous",
    "merci",
    "merci beaucoup",
    "salutations",
    "amicalement",
    "bonne journée",
    "saludos",
    "un saludo",
    "saludos cordiales",
    "atentamente",
    "gracias",
    "muchas gracias",
    "un abrazo",
    "cordiali saluti",
    "saluti",
    "distinti saluti",
    "grazie",
    "grazie mille",
    "met vriendelijke groet",
    "met vriendelijke groeten",
    "groeten",
    "groetjes",
    "bedankt",
    "dank je",
    "med vänliga hälsningar",
    "vänliga hälsningar",
    "hälsningar",
    "mvh",
    "tack",
    "med venlig hilsen",
    "venlig hilsen",
    "med vennlig hilsen",
    "vennlig hilsen",
    "hilsen",
    "takk",
    "tak",
    "atenciosamente",
    "abraços",
    "obrigado",
    "obrigada",
    "cumprimentos",
    "с уважением",
    "спасибо",
    "всего доброго",
    "пока",
    "pozdrawiam",
    "z poważaniem",
    "dziękuję",
    "ystävällisin terveisin",
    "terveisin",
    "kiitos",
    "saygılarımla",
    "teşekkürler",
    "s pozdravem",
    "díky",
    "děkuji",
    "üdvözlettel",
    "köszönöm",
    "trân trọng",
    "cảm ơn",
    "よろしくお願いします",
    "よろしくお願いいたします",
    "以上、よろしくお願いします",
    "以上、よろしくお願いいたします",
    "以上",
    "谢谢",
    "此致敬礼",
    "祝好",
    "감사합니다",
];

/// Greetings (lower-cased prefixes) that alone are not an instruction.
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "good morning",
    "good afternoon",
    "bonjour",
    "salut",
    "hallo",
    "guten tag",
    "hola",
    "buenos días",
    "ciao",
    "buongiorno",
    "hej",
    "hei",
    "olá",
    "oi",
    "привет",
    "здравствуйте",
    "cześć",
    "dzień dobry",
    "moi",
    "merhaba",
    "xin chào",
    "こんにちは",
    "你好",
];

/// The class of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Blank,
    Quoted,
    Text,
}

fn class(line: &str) -> Class {
    let t = line.trim_start();
    if t.is_empty() {
        Class::Blank
    } else if t.starts_with('>') {
        Class::Quoted
    } else {
        Class::Text
    }
}

fn lower(line: &str) -> String {
    line.trim().to_lowercase()
}

/// A line as a header name and value (`From: Ann`, `*From:* Ann`, `**De :** Ann`, `发件人：Ann`).
fn header_name(line: &str) -> Option<String> {
    let t = line.trim().trim_start_matches(['*', '_']);
    let end = t.find([':', '：'])?;
    let name = t[..end].trim().trim_end_matches(['*', '_']).trim().to_lowercase();
    (!name.is_empty() && name.chars().count() <= 24).then_some(name)
}

fn is_from_header(line: &str) -> bool {
    header_name(line).is_some_and(|n| FROM_NAMES.contains(&n.as_str()))
}

fn is_any_header(line: &str) -> bool {
    header_name(line).is_some_and(|n| FROM_NAMES.contains(&n.as_str()) || OTHER_NAMES.contains(&n.as_str()))
}

/// An Outlook-style header block starting at `i`: at least two header lines (a `From` among
/// them) within the next six non-blank lines, any order. `Some(true)` if it forwards.
fn header_block(lines: &[&str], i: usize) -> Option<bool> {
    if !is_any_header(lines[i]) {
        return None;
    }
    // Values may wrap (`From: Human Resources` / `<hr@…>`): headers need not be adjacent.
    let window: Vec<&str> = lines[i..].iter().copied().filter(|l| !l.trim().is_empty()).take(6).collect();
    let headers: Vec<&str> = window.iter().copied().filter(|l| is_any_header(l)).collect();
    let has_from = headers.iter().any(|l| is_from_header(l));
    let adjacent = window.get(1).is_some_and(|l| is_any_header(l));
    let enough = headers.len() >= 3 || (headers.len() >= 2 && is_from_header(headers[0]) && adjacent);
    if !(has_from && enough) {
        return None;
    }
    let forwards = headers.iter().any(|l| {
        let t = l.trim().trim_start_matches(['*', '_']);
        let value = t.split_once([':', '：']).map(|(_, v)| v.trim_start_matches(['*', '_']).trim().to_lowercase());
        value.is_some_and(|v| FORWARD_SUBJECTS.iter().any(|p| v.starts_with(p)))
    });
    Some(forwards)
}

/// What a dashed separator line (`-----Original Message-----`) or marker line announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Forward,
    History,
}

fn marker(line: &str) -> Option<Marker> {
    let l = lower(line);
    let dashed = l.starts_with("---") || l.starts_with("———") || l.starts_with("- - -");
    if l.chars().count() >= 10 && l.chars().all(|c| c == '_') {
        return Some(Marker::History);
    }
    let apple = l.ends_with(':') || l.ends_with(" :");
    if !(dashed || apple) || l.chars().count() > 90 {
        return None;
    }
    if FORWARD_WORDS.iter().any(|w| l.contains(w)) {
        return Some(Marker::Forward);
    }
    if dashed && ORIGINAL_WORDS.iter().any(|w| l.contains(w)) {
        return Some(Marker::History);
    }
    None
}

/// Ends like a sentence (`…page.`), not like an abbreviated date (`So., 23.`).
fn looks_like_sentence_end(l: &str) -> bool {
    let mut rev = l.trim_end().chars().rev();
    match (rev.next(), rev.next()) {
        (Some('.'), Some(c)) => !c.is_ascii_digit(),
        (Some(c), _) => matches!(c, '!' | '?' | '。' | '！' | '？'),
        _ => false,
    }
}

/// Whether a line starts the way a quote header does: a known opening word or a digit, or
/// it carries a date (`pe 20. lokakuuta 2017 klo 17.50 John Coe`).
fn starts_like_attribution(l: &str) -> bool {
    let l = l.trim().to_lowercase();
    ATTRIBUTION_STARTS.iter().any(|s| l.starts_with(s)) || l.chars().any(|c| c.is_ascii_digit())
}

/// Whether `text` (one line, or up to three joined) reads as a quote header.
fn attribution_text(text: &str, next_is_quote: bool) -> bool {
    let l = text.trim().to_lowercase();
    // Zoho and some web clients: `---- On … wrote ----`.
    let l = l.trim_matches(|c: char| c == '-' || c.is_whitespace());
    let dated = l.chars().any(|c| c.is_ascii_digit());
    let addressed = l.contains('@');
    // Old Gmail: `2013/7/20 sam <sam@example.com>` right above the quote, no colon.
    if dated && addressed && l.ends_with('>') && next_is_quote && l.chars().count() <= 200 {
        return true;
    }
    let ends = l.ends_with(':') || l.ends_with('：') || text.trim().ends_with("---");
    if !ends || l.chars().count() > 300 {
        return false;
    }
    let verb = ATTRIBUTION_VERBS.iter().any(|v| l.contains(v));
    // Gmail in any language: `date name <address>:`.
    let gmail = dated && addressed && (l.ends_with(">:") || l.ends_with(">：") || l.ends_with("> :"));
    (verb && (dated || addressed || next_is_quote)) || gmail
}

/// Whether a quote header starts at line `i`, and how many lines it spans.
fn attribution(lines: &[&str], i: usize) -> Option<usize> {
    let next_quote = |after: usize| {
        lines[after..].iter().find(|l| class(l) != Class::Blank).is_some_and(|l| class(l) == Class::Quoted)
    };
    let first = lines[i].trim();
    if first.is_empty() || class(first) == Class::Quoted {
        return None;
    }
    if attribution_text(first, next_quote(i + 1)) {
        return Some(1);
    }
    // Wrapped over two or three lines: only when the first line starts like one and is not
    // itself the end of a sentence, and the next line is not a quote header by itself.
    if !starts_like_attribution(first) || looks_like_sentence_end(first) {
        return None;
    }
    for span in 2..=3 {
        let Some(parts) = lines.get(i..i + span) else { break };
        if parts[1..].iter().any(|p| p.trim().is_empty() || class(p) == Class::Quoted) {
            break;
        }
        let later = parts[span - 1];
        if attribution_text(later, false) && starts_like_attribution(later) && !later.trim().starts_with('<') {
            return None; // the later line is a header on its own
        }
        let joined = parts.iter().map(|p| p.trim()).collect::<Vec<_>>().join(" ");
        if attribution_text(&joined, next_quote(i + span)) {
            return Some(span);
        }
    }
    None
}

/// A piece of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// The sender's own lines.
    Own(usize, usize),
    /// A quote header (optional) and its `>` block.
    Quote(usize, usize),
}

/// Where the body stops being the sender's message: history (cut) or a forward (kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    None,
    History(usize, Rule),
    Forward(usize),
}

fn split(lines: &[&str]) -> (Vec<Piece>, End) {
    let mut pieces = Vec::new();
    let mut own_start = 0;
    let mut i = 0;
    let push_own = |pieces: &mut Vec<Piece>, from: usize, to: usize| {
        if from < to {
            pieces.push(Piece::Own(from, to));
        }
    };
    while i < lines.len() {
        let line = lines[i];
        if let Some(m) = marker(line) {
            push_own(&mut pieces, own_start, i);
            return match m {
                Marker::Forward => (pieces, End::Forward(i)),
                Marker::History => (pieces, End::History(i, Rule::Separator)),
            };
        }
        if let Some(forwards) = header_block(lines, i) {
            push_own(&mut pieces, own_start, i);
            return (pieces, if forwards { End::Forward(i) } else { End::History(i, Rule::HeaderBlock) });
        }
        let header = attribution(lines, i);
        if header.is_some() || class(line) == Class::Quoted {
            let mut j = i + header.unwrap_or(0);
            let mut last_quoted = None;
            while j < lines.len() && class(lines[j]) != Class::Text {
                if class(lines[j]) == Class::Quoted {
                    last_quoted = Some(j);
                }
                j += 1;
            }
            let Some(last) = last_quoted else {
                // A quote header followed by no quoted lines (Outlook, HTML converted
                // without quote marks): what follows is history.
                push_own(&mut pieces, own_start, i);
                return (pieces, End::History(i, Rule::QuoteHeader));
            };
            push_own(&mut pieces, own_start, i);
            pieces.push(Piece::Quote(i, last + 1));
            i = last + 1;
            own_start = i;
            continue;
        }
        i += 1;
    }
    push_own(&mut pieces, own_start, lines.len());
    (pieces, End::None)
}

fn has_text(lines: &[&str]) -> bool {
    lines.iter().any(|l| !l.trim().is_empty())
}

fn is_footer(line: &str) -> bool {
    let l = lower(line);
    let l = l.trim_start_matches(['*', '_']).trim_end_matches(['*', '_']);
    l.chars().count() <= 80
        && FOOTERS.iter().any(|f| l.starts_with(f))
        // "Sent from my desk, I can see…" is prose: a footer names a device or an app, no clause.
        && !l.contains(", ")
        && l.split_whitespace().count() <= 9
}

fn strip_punct(s: &str) -> &str {
    s.trim().trim_end_matches([',', '!', '.', '，', '。', '！', ':', ';', '-', '—', '–', ' '])
}

/// `Thanks,` / `Best regards` / `Thanks, Ann` / `Cheers - Bob`.
fn is_valediction(line: &str) -> bool {
    let t = line.trim();
    let lower = t.to_lowercase();
    if VALEDICTIONS.contains(&strip_punct(&lower)) {
        return true;
    }
    // Bilingual: `Med venlig hilsen / Kind regards`.
    if lower.contains('/') && lower.split('/').all(|p| VALEDICTIONS.contains(&strip_punct(p))) {
        return true;
    }
    // A valediction and a short name on one line.
    let Some(pos) = t.find([',', '!', '-', '–']) else { return false };
    let (head, rest) = (t[..pos].to_lowercase(), t[pos..].trim_start_matches([',', '!', '-', '–', ' ']));
    VALEDICTIONS.contains(&strip_punct(&head)) && is_name(rest)
}

/// A short name: one to three capitalised words, no sentence punctuation.
fn is_name(s: &str) -> bool {
    let s = s.trim();
    let words: Vec<&str> = s.split_whitespace().collect();
    !words.is_empty()
        && words.len() <= 3
        && s.chars().count() <= 32
        && !looks_like_sentence_end(s)
        && words.iter().all(|w| w.chars().next().is_some_and(|c| c.is_uppercase() || !c.is_alphabetic()))
}

/// A line of a name block under a valediction: name, title, company, phone, address —
/// short, capitalised or not a word at all (`+1 555…`, `ann@…`, `www.…`), not a sentence
/// (`Thanks,` / `please move the photo.` is an instruction, not a signature).
fn is_name_block_line(line: &str) -> bool {
    let t = line.trim();
    let words = t.split_whitespace().count();
    let shaped = t.chars().next().is_some_and(|c| c.is_uppercase() || !c.is_alphabetic())
        || t.contains('@')
        || t.starts_with("www.")
        || t.contains("://");
    t.chars().count() <= 60 && words <= 8 && shaped && !t.ends_with(['?', '!']) && !(t.ends_with('.') && words > 4)
}

/// A signature at the end of `own` (trailing blanks already gone): its rule and first line.
fn signature(own: &[&str]) -> Option<(Rule, usize)> {
    // The `-- ` delimiter (or a bare `--`): everything after it.
    if let Some(at) = own.iter().position(|l| l.trim_end() == "--") {
        return Some((Rule::SignatureDelimiter, at));
    }
    let last = own.len().checked_sub(1)?;
    if is_footer(own[last]) {
        return Some((Rule::MobileFooter, last));
    }
    // A valediction followed by at most four short lines.
    for at in own.len().saturating_sub(6)..own.len() {
        let after: Vec<&&str> = own[at + 1..].iter().filter(|l| !l.trim().is_empty()).collect();
        if is_valediction(own[at]) && after.len() <= 4 && after.iter().all(|l| is_name_block_line(l)) {
            return Some((Rule::Valediction, at));
        }
    }
    // `-Ann` / `– Ann` / `~Ann` alone after a blank line (not the last item of a list).
    let t = own[last].trim();
    let before = own[..last].iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim());
    let list = before.is_some_and(|b| b.ends_with(':') || b.starts_with(['-', '*', '•']));
    if last > 0
        && own[last - 1].trim().is_empty()
        && !list
        && t.starts_with(['-', '–', '—', '~'])
        && is_name(t.trim_start_matches(['-', '–', '—', '~', ' ']))
    {
        return Some((Rule::NameSign, last));
    }
    None
}

fn short(line: &str) -> String {
    let t = line.trim();
    match t.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// Lines without trailing whitespace, at most one blank line in a row, trimmed at both ends.
fn tidy<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for l in lines {
        let l = l.trim_end();
        if l.is_empty() && out.last().is_none_or(|p| p.is_empty()) {
            continue;
        }
        out.push(l);
    }
    out.join("\n").trim().to_string()
}

fn is_greeting_only(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(first), None) = (lines.next(), lines.next()) else { return false };
    let l = strip_punct(&first.to_lowercase()).to_string();
    l.split_whitespace().count() <= 4 && GREETINGS.iter().any(|g| l == *g || l.starts_with(&format!("{g} ")))
}

/// How many leading lines of `own` remain once signatures are cut from its end, with the
/// cuts (rule, index into `own`, lines removed), last first.
fn strip_signatures(own: &[&str]) -> (usize, Vec<(Rule, usize, usize)>) {
    let mut len = own.len();
    let mut cuts = Vec::new();
    loop {
        while len > 0 && own[len - 1].trim().is_empty() {
            len -= 1;
        }
        let Some((rule, at)) = signature(&own[..len]) else { break };
        cuts.push((rule, at, len - at));
        len = at;
    }
    (len, cuts)
}

/// Whether lines hold the sender's words: some text that is not all signature.
fn substantive(lines: &[&str]) -> bool {
    has_text(lines) && has_text(&lines[..strip_signatures(lines).0])
}

/// Extracts the new text of a message body and says how. Pure and total.
pub fn extract(body: &str) -> Extraction {
    let normalised = body.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').map(str::trim_end).collect();
    let (pieces, end) = split(&lines);
    let mut cuts = Vec::new();
    // A quote is leading or trailing relative to the sender's words; a signature after
    // the last quote (`> …` then `-- \nAnn`) does not make that quote interior.
    let own_pieces: Vec<usize> = pieces
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, Piece::Own(a, b) if substantive(&lines[*a..*b])))
        .map(|(i, _)| i)
        .collect();
    let (first_own, last_own) = (own_pieces.first().copied(), own_pieces.last().copied());
    // The indices of the lines kept, in order (cuts are reported by body line).
    let mut kept_at: Vec<usize> = Vec::new();
    let forward = matches!(end, End::Forward(_));
    for (k, piece) in pieces.iter().enumerate() {
        match *piece {
            Piece::Own(a, b) => kept_at.extend(a..b),
            Piece::Quote(a, b) => {
                let leading = first_own.is_none_or(|f| k < f);
                let trailing = last_own.is_none_or(|l| k > l) && !forward;
                if leading || trailing {
                    let rule = if leading { Rule::LeadingQuote } else { Rule::TrailingQuote };
                    cuts.push(Cut { rule, line: a + 1, lines: b - a, text: short(lines[a]) });
                } else {
                    kept_at.extend(a..b);
                }
            }
        }
    }
    let kept: Vec<&str> = kept_at.iter().map(|&i| lines[i]).collect();
    // The sender's own text ends here; a signature can only be at its end.
    let (own_len, sig_cuts) = strip_signatures(&kept);
    for (rule, at, n) in sig_cuts {
        cuts.push(Cut { rule, line: kept_at[at] + 1, lines: n, text: short(kept[at]) });
    }
    let mut out: Vec<&str> = kept[..own_len].to_vec();
    let history = match end {
        End::Forward(at) => {
            out.push("");
            out.extend(&lines[at..]);
            lines.len()
        }
        End::History(at, rule) => {
            cuts.push(Cut { rule, line: at + 1, lines: lines.len() - at, text: short(lines[at]) });
            at
        }
        End::None => lines.len(),
    };
    let text = tidy(out);
    cuts.sort_by_key(|c| c.line);
    if text.is_empty() || is_greeting_only(&text) {
        if let Some(whole) = fallback(&lines, &pieces, history, &text) {
            cuts.push(Cut { rule: Rule::Fallback, line: 1, lines: 0, text: short(&whole) });
            return Extraction { text: whole, fallback: true, cuts };
        }
    }
    Extraction { text, fallback: false, cuts }
}

/// The whole top part when the rules left nothing or only a greeting: the text above the
/// first quote or the history, else every line of the sender's own (quotes and history
/// left out). Signatures are left out
/// unless that would leave nothing. `None` when no candidate says more than `text` (a
/// reply that is only "Hello" and a footer stays "Hello").
fn fallback(lines: &[&str], pieces: &[Piece], history: usize, text: &str) -> Option<String> {
    let first_quote = pieces.iter().find_map(|p| match p {
        Piece::Quote(a, _) => Some(*a),
        Piece::Own(..) => None,
    });
    let top = first_quote.unwrap_or(history).min(history);
    let own: Vec<&str> = pieces
        .iter()
        .flat_map(|p| match *p {
            Piece::Own(a, b) => &lines[a..b],
            Piece::Quote(..) => &lines[0..0],
        })
        .copied()
        .collect();
    let render = |part: &[&str]| {
        let unsigned = tidy(part[..strip_signatures(part).0].iter().copied());
        if unsigned.is_empty() {
            tidy(part.iter().copied())
        } else {
            unsigned
        }
    };
    // Never the quoted history: a reply with no words of its own must not run the old
    // instruction (or our own reply) it quotes.
    let candidates = [render(&lines[..top]), render(&own)];
    let useful = |c: &String| !c.is_empty() && !is_greeting_only(c) && c != text;
    let chosen =
        candidates.iter().find(|c| useful(c)).or_else(|| candidates.iter().find(|c| !c.is_empty() && *c != text));
    chosen.cloned()
}

/// Extracts the new text of a message body. Pure and total: any input gives a string.
pub fn extract_instruction(body: &str) -> String {
    extract(body).text
}

#[cfg(test)]
mod tests {
    use super::{extract, extract_instruction as x, Rule};
    use proptest::prelude::*;

    #[test]
    fn cases() {
        let table = [
            ("Do it.\n\nOn Mon, 1 Jan 2026 at 10:00, Ann <a@b.c> wrote:\n> old", "Do it."),
            ("Do it.\nOn Mon, 1 Jan 2026 at 10:00, Ann Long Name <ann@\nexample.com> wrote:\n> old", "Do it."),
            ("Fais-le.\n\nLe lun. 1 janv. 2026 à 10:00, Ann <a@b.c> a écrit :\n> vieux", "Fais-le."),
            ("Mach es.\n\nAm 01.01.2026 um 10:00 schrieb Ann <a@b.c>:\n> alt", "Mach es."),
            ("Hazlo.\n\nEl lun, 1 ene 2026 a las 10:00, Ann (<a@b.c>) escribió:\n> viejo", "Hazlo."),
            ("Сделай.\n\n1 дек. 2026 г., в 10:00, Ann <a@b.c>\nнаписал(а):\n> старое", "Сделай."),
            ("Làm đi.\n\nVào Th 3, 1 thg 12, 2026 vào lúc 10:00 Ann <a@b.c> đã viết:\n> cũ", "Làm đi."),
            ("Gjør det.\n\ntir. 1. des. 2026 kl. 10:00 skrev Ann <a@b.c>:\n> gammel", "Gjør det."),
            ("ロゴを大きく。\n\n2026年12月1日(火) 10:00 Ann <a@b.c>:\n> 古い", "ロゴを大きく。"),
            ("Do it.\n\n---- On Mon, 01 Dec 2026 10:00:00 +0000 Ann <a@b.c> wrote ----\n> old", "Do it."),
            ("Do it.\n\n-----Original Message-----\nFrom: x", "Do it."),
            ("Do it.\n________________________________\nFrom: Ann\nSent: Monday", "Do it."),
            ("Do it.\n\nFrom: Ann <a@b.c>\nSent: Monday, 1 January\nTo: x\nSubject: y", "Do it."),
            ("Do it.\n\n*From:* Ann <a@b.c>\n*Sent:* Monday\n*To:* x\n*Subject:* y\nold", "Do it."),
            ("Do it.\n\nSent: Monday\nFrom: Ann <a@b.c>\nTo: x\nSubject: y\nold", "Do it."),
            ("Gör det.\n\nFrån: Ann <a@b.c>\nSkickat: den 1 december 2026 10:00\nTill: x\nÄmne: y", "Gör det."),
            ("Do it.\n\n-- \nAnn\nCEO", "Do it."),
            ("Do it.\n\nSent from my iPhone", "Do it."),
            ("Do it.\n\nRegards,\nJohn Doe\nCEO, Acme Inc.\n+1 555 0100", "Do it."),
            ("Do it.\n\nThanks, Ann", "Do it."),
            ("Do it.\n\nThanks,\nplease also move the photo", "Do it.\n\nThanks,\nplease also move the photo"),
            ("Do it.\n\n-Ann", "Do it."),
            ("Sent from my desk, I can see the header is wrong.\nFix it.", "Sent from my desk, I can see the header is wrong.\nFix it."),
            ("Thanks, please also fix the footer.", "Thanks, please also fix the footer."),
            ("Line one.\nLine two.", "Line one.\nLine two."),
            ("On 1/12/2026 10:00, Ann wrote:\n> old text\n\nNew text below.", "New text below."),
            ("Ann wrote:\n> Can you do A?\nYes.\n> And B?\nNo.\n> Thanks\n", "Yes.\n> And B?\nNo."),
            (
                "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@c.d>\nDate: Mon\nSubject: Prices\nTo: Ann\n\nNew prices: 20 €.",
                "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@c.d>\nDate: Mon\nSubject: Prices\nTo: Ann\n\nNew prices: 20 €.",
            ),
            (
                "See below.\n\nFrom: Bob <b@c.d>\nSent: Monday\nTo: Ann\nSubject: FW: Prices\n\nNew prices.",
                "See below.\n\nFrom: Bob <b@c.d>\nSent: Monday\nTo: Ann\nSubject: FW: Prices\n\nNew prices.",
            ),
            ("Please fix the From: field label on the contact page.", "Please fix the From: field label on the contact page."),
            ("Here is what John wrote: the header is fine.", "Here is what John wrote: the header is fine."),
        ];
        for (input, want) in table {
            assert_eq!(x(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn nothing_left_falls_back_to_the_top_part() {
        let e = extract("Thanks!\n\nOn Mon, 1 Jan 2026 at 10:00, Ann <a@b.c> wrote:\n> old");
        assert_eq!(e.text, "Thanks!");
        assert!(e.fallback);
        assert!(e.cuts.iter().any(|c| c.rule == Rule::Fallback));
        // A greeting with only a signature under it says no more than the greeting.
        let e = extract("Hi Bob,\n\n-- \nAnn");
        assert_eq!((e.text.as_str(), e.fallback), ("Hi Bob,", false));
        // A greeting above a bottom-posted quote is not all there is: the words under it are kept.
        let e = extract("Hi Bob,\nOn Mon, 1 Jan 2026 at 10:00, Ann <a@b.c> wrote:\n> old\nPlease fix it.");
        assert_eq!(
            (e.text.as_str(), e.fallback),
            ("Hi Bob,\nOn Mon, 1 Jan 2026 at 10:00, Ann <a@b.c> wrote:\n> old\nPlease fix it.", false)
        );
        // Only quotes: nothing of the sender's, and the quoted history is never the instruction.
        let quoted_only = extract("On Mon, 1 Jan 2026 at 10:00, Ann <a@b.c> wrote:\n> do the old thing");
        assert_eq!((quoted_only.text.as_str(), quoted_only.fallback), ("", false));
        assert_eq!(extract("").text, "");
    }

    #[test]
    fn cuts_say_which_rule_removed_what() {
        let e = extract("Do it.\n\nRegards,\nAnn\n\nOn Mon, 1 Jan 2026 at 10:00, Ann <a@b.c> wrote:\n> old\n> older");
        let rules: Vec<(Rule, usize, usize)> = e.cuts.iter().map(|c| (c.rule, c.line, c.lines)).collect();
        assert_eq!(rules, vec![(Rule::Valediction, 3, 2), (Rule::TrailingQuote, 6, 3)]);
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
            let want = s.trim();
            let e = extract(&s);
            // Prose is never cut; a lone greeting-like line may come back through the fallback unchanged.
            prop_assert_eq!(e.text.as_str(), want);
        }

        #[test]
        fn text_without_quotes_never_gives_nothing(s in "[^>:_-]{0,300}") {
            prop_assume!(!s.trim().is_empty());
            prop_assert!(!x(&s).is_empty(), "{:?}", s);
        }
    }
}
