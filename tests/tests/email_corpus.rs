//! The public email corpus (`tests/fixtures/emails/corpus/`, sources and licences in
//! `tests/fixtures/emails/SOURCES.md`): real replies from many mail clients and languages,
//! each with the instruction a person reads in it. Prints the exact-match rate; fails under
//! 95 %, and on any loss of content (a line of the expected instruction missing from the
//! extracted one). Pure parsing, no emulator.

use std::collections::BTreeSet;
use std::path::PathBuf;

use switchyard_core::email::parse_email;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/emails/corpus")
}

struct Row {
    file: String,
    client: String,
    language: String,
}

fn index() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus().join("index.tsv")).expect("corpus/index.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!(cols.len() >= 4, "index.tsv row {l:?}: file, client, language, source, kinds");
            Row { file: cols[0].into(), client: cols[1].into(), language: cols[2].into() }
        })
        .collect()
}

#[test]
fn the_corpus_is_extracted_exactly_and_never_loses_content() {
    let rows = index();
    let clients: BTreeSet<&str> = rows.iter().map(|r| r.client.as_str()).collect();
    let languages: BTreeSet<&str> = rows.iter().map(|r| r.language.as_str()).collect();
    let (mut exact, mut mismatches, mut losses) = (0, Vec::new(), Vec::new());
    for row in &rows {
        let raw = std::fs::read(corpus().join(&row.file)).unwrap_or_else(|e| panic!("{}: {e}", row.file));
        let expected_path = corpus().join(row.file.replace(".eml", ".expected"));
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| panic!("{expected_path:?}: {e}"));
        let expected = expected.trim();
        let got = parse_email(&raw).unwrap_or_else(|e| panic!("{}: {e}", row.file)).instruction;
        if got == expected {
            exact += 1;
            continue;
        }
        let missing: Vec<&str> =
            expected.lines().map(str::trim).filter(|l| !l.is_empty() && !got.contains(l)).collect();
        if !missing.is_empty() {
            losses.push(format!("{}: lost {missing:?}\n--- got ---\n{got}\n--- expected ---\n{expected}", row.file));
        }
        mismatches.push(format!("{}:\n--- got ---\n{got}\n--- expected ---\n{expected}\n", row.file));
    }
    let rate = 100.0 * exact as f64 / rows.len().max(1) as f64;
    eprintln!(
        "email corpus: {exact}/{} exact ({rate:.1} %), {} content losses; {} clients, {} languages",
        rows.len(),
        losses.len(),
        clients.len(),
        languages.len()
    );
    for m in &mismatches {
        eprintln!("mismatch {m}");
    }
    assert!(rows.len() >= 60, "the corpus has {} fixtures, at least 60 wanted", rows.len());
    assert!(clients.len() >= 15, "{} clients: {clients:?}", clients.len());
    assert!(languages.len() >= 8, "{} languages: {languages:?}", languages.len());
    assert!(losses.is_empty(), "content lost:\n{}", losses.join("\n"));
    assert!(rate >= 95.0, "exact-match rate {rate:.1} % is under 95 %");
}

#[test]
fn every_fixture_is_indexed() {
    let indexed: BTreeSet<String> = index().into_iter().map(|r| r.file).collect();
    for e in std::fs::read_dir(corpus()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".eml") {
            assert!(indexed.contains(&name), "{name} is not in index.tsv");
            assert!(corpus().join(name.replace(".eml", ".expected")).exists(), "{name} has no .expected");
        }
    }
}
