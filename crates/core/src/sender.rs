//! Sender authentication (DESIGN §7): is the `From` domain of an email authenticated?
//!
//! SES reports three verdicts, and only one of them is about `From`: `dmarcVerdict`. SPF is
//! about the envelope sender (`MAIL FROM`, SES `mail.source`) and DKIM about the signing
//! domains (`d=`), which an attacker chooses. So an email is authenticated only by
//! - DMARC `PASS`; or
//! - an SPF `PASS` whose envelope domain aligns with the `From` domain; or
//! - a DKIM `PASS` where every signature's `d=` aligns with the `From` domain (SES gives one
//!   verdict for all signatures, so one unaligned signature could be the one that passed).
//!
//! Alignment is relaxed (RFC 7489 §3.1) and conservative: two domains align when one is the
//! other or a subdomain of it (no public-suffix list: a pair this refuses that DMARC would
//! accept, say `a.corp.example`/`b.corp.example`, still passes through the DMARC verdict).
//! A DMARC `FAIL` is final. An unaligned SPF or DKIM pass never authenticates `From`, whatever
//! the project's `relax_sender_auth_without_dmarc` says (it only ever accepted those).

use serde::Serialize;

use crate::project::Verdict;

/// What SES established about who sent an email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderEvidence {
    /// SPF verdict (about `spf_domain`).
    pub spf: Verdict,
    /// DKIM verdict (about the `dkim_domains`).
    pub dkim: Verdict,
    /// DMARC verdict (about the `From` domain).
    pub dmarc: Verdict,
    /// Domain of the envelope sender that SPF checked (`mail.source`); none for a null sender.
    pub spf_domain: Option<String>,
    /// The `d=` domains of the message's DKIM signatures.
    pub dkim_domains: Vec<String>,
}

/// How the `From` domain was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Authenticated {
    /// DMARC passed.
    Dmarc,
    /// SPF passed for an aligned envelope domain.
    AlignedSpf,
    /// DKIM passed and every signature is aligned.
    AlignedDkim,
    /// No longer produced (the project's relaxation accepted an unaligned pass from a domain
    /// without DMARC: a forgery); kept so stored or logged values still read.
    RelaxedNoDmarc,
}

/// Why an email's sender is not authenticated. Never answered: the address may be forged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unauthenticated {
    /// The `From` domain's DMARC policy failed.
    #[error("DMARC failed for the From domain")]
    DmarcFailed,
    /// SPF or DKIM passed, but for another domain than `From`'s.
    #[error("SPF/DKIM passed only for domains not aligned with the From domain")]
    NotAligned,
    /// Nothing passed.
    #[error("neither DMARC, SPF nor DKIM passed")]
    NoPass,
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

/// Whether two domains align (relaxed, conservative: equal, or one a subdomain of the other).
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) =
        (a.trim().trim_end_matches('.').to_ascii_lowercase(), b.trim().trim_end_matches('.').to_ascii_lowercase());
    !a.is_empty() && !b.is_empty() && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// Decides whether the `From` address of an email is authenticated.
pub fn authenticate(
    from: &str,
    e: &SenderEvidence,
    relax_without_dmarc: bool,
) -> Result<Authenticated, Unauthenticated> {
    let from_domain = domain_of(from);
    match e.dmarc {
        Verdict::Fail => return Err(Unauthenticated::DmarcFailed),
        Verdict::Pass => return Ok(Authenticated::Dmarc),
        Verdict::Neutral => {}
    }
    if e.spf == Verdict::Pass && e.spf_domain.as_deref().is_some_and(|d| aligned(d, from_domain)) {
        return Ok(Authenticated::AlignedSpf);
    }
    if e.dkim == Verdict::Pass && !e.dkim_domains.is_empty() && e.dkim_domains.iter().all(|d| aligned(d, from_domain)) {
        return Ok(Authenticated::AlignedDkim);
    }
    // The relaxation for domains without DMARC (`GRAY`) used to accept an unaligned SPF or
    // DKIM pass: a pass for the sender's own domain, which says nothing about the `From` it
    // wrote (anyone passes SPF for a domain of their own). It now requires an aligned pass,
    // which is what the checks above already accept, so it relaxes nothing (the flag is
    // kept so existing project items still read).
    let _ = relax_without_dmarc;
    if e.spf == Verdict::Pass || e.dkim == Verdict::Pass {
        return Err(Unauthenticated::NotAligned);
    }
    Err(Unauthenticated::NoPass)
}

/// The `d=` tags of the `DKIM-Signature` header values given. Tag names are
/// case-sensitive (RFC 6376 §3.2): `D=victim.example` is not the signing domain. A signature
/// with its `d=` repeated is invalid (tags must not repeat): every value is returned, so
/// alignment must hold for all of them. A signature without `d=` yields an empty domain,
/// which aligns with nothing.
pub fn dkim_domains<'a>(signatures: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for sig in signatures {
        let before = out.len();
        for tag in sig.split(';') {
            let Some((k, v)) = tag.split_once('=') else { continue };
            if k.trim() == "d" {
                out.push(v.split_whitespace().collect::<String>().to_ascii_lowercase());
            }
        }
        if out.len() == before {
            out.push(String::new());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Fail as F, Neutral as N, Pass as P};

    const FROM: &str = "ann@corp.example";

    fn ev(spf: Verdict, dkim: Verdict, dmarc: Verdict, spf_domain: &str, dkim_domains: &[&str]) -> SenderEvidence {
        SenderEvidence {
            spf,
            dkim,
            dmarc,
            spf_domain: (!spf_domain.is_empty()).then(|| spf_domain.to_string()),
            dkim_domains: dkim_domains.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn every_verdict_combination_with_and_without_alignment() {
        use Authenticated as A;
        use Unauthenticated as U;
        let verdicts = [P, F, N];
        // Each of the 27 verdict triples × every alignment of the SPF domain (aligned, not,
        // a null envelope sender) and of the DKIM signatures (aligned, not, none at all).
        let spf_domains = [("corp.example", true), ("evil.example", false), ("", false)];
        let dkim_sets: [(&[&str], bool); 3] =
            [(&["mail.corp.example"], true), (&["evil.example"], false), (&[], false)];
        for spf in verdicts {
            for dkim in verdicts {
                for dmarc in verdicts {
                    for ((spf_d, spf_aligned), (dkim_d, dkim_aligned)) in
                        spf_domains.iter().flat_map(|s| dkim_sets.iter().map(move |d| (*s, *d)))
                    {
                        let e = ev(spf, dkim, dmarc, spf_d, dkim_d);
                        let want = match dmarc {
                            F => Err(U::DmarcFailed),
                            P => Ok(A::Dmarc),
                            N if spf == P && spf_aligned => Ok(A::AlignedSpf),
                            N if dkim == P && dkim_aligned => Ok(A::AlignedDkim),
                            N if spf == P || dkim == P => Err(U::NotAligned),
                            N => Err(U::NoPass),
                        };
                        assert_eq!(authenticate(FROM, &e, false), want, "{e:?}");
                        // The relaxation no longer turns an unaligned pass into one.
                        assert_eq!(authenticate(FROM, &e, true), want, "relaxed {e:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_forged_allowed_sender_is_not_authenticated() {
        // The attacker's own envelope domain passes SPF; DKIM is GRAY; DMARC fails.
        let e = ev(P, N, F, "attacker.example", &[]);
        assert_eq!(authenticate(FROM, &e, true), Err(Unauthenticated::DmarcFailed));
        // Without a DMARC verdict, the unaligned SPF pass is still not enough.
        let e = ev(P, N, N, "attacker.example", &[]);
        assert_eq!(authenticate(FROM, &e, false), Err(Unauthenticated::NotAligned));
        // Nor with the project's relaxation for domains without DMARC.
        assert_eq!(authenticate(FROM, &e, true), Err(Unauthenticated::NotAligned));
    }

    #[test]
    fn an_upper_case_d_tag_is_not_the_signing_domain() {
        // GIVEN the attacker's valid signature (d=attacker.example) with a `D=` naming the
        // victim's domain first: tag names are case-sensitive, `D` is an unknown tag
        let sig = "v=1; a=rsa-sha256; D=corp.example; d=attacker.example; s=sel; b=abc";
        let domains = dkim_domains([sig]);
        assert_eq!(domains, ["attacker.example"]);
        // THEN the DKIM pass is not aligned with ann@corp.example
        let e = ev(N, P, N, "", &domains.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(authenticate(FROM, &e, false), Err(Unauthenticated::NotAligned));
        // AND a repeated d= (an invalid signature) must align in every value
        let twice = dkim_domains(["v=1; d=corp.example; d=attacker.example; s=x"]);
        let e = ev(N, P, N, "", &twice.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(authenticate(FROM, &e, false), Err(Unauthenticated::NotAligned));
    }

    #[test]
    fn one_unaligned_dkim_signature_spoils_the_dkim_pass() {
        let e = ev(N, P, N, "", &["corp.example", "attacker.example"]);
        assert_eq!(authenticate(FROM, &e, false), Err(Unauthenticated::NotAligned));
    }

    #[test]
    fn alignment_is_relaxed_but_never_a_suffix_match() {
        assert!(aligned("corp.example", "corp.example"));
        assert!(aligned("bounces.corp.example", "corp.example"));
        assert!(aligned("CORP.example.", "mail.corp.example"));
        assert!(!aligned("evilcorp.example", "corp.example"));
        assert!(!aligned("corp.example.evil", "corp.example"));
        assert!(!aligned("", "corp.example"));
    }

    #[test]
    fn dkim_domains_are_read_from_signatures() {
        let sigs = [
            "v=1; a=rsa-sha256; c=relaxed/relaxed; d=Corp.Example; s=sel;\r\n b=abc",
            "v=1; d = mail.other.example ; s=x",
            "v=1; s=x",
        ];
        // A signature without d= aligns with nothing (an empty domain).
        assert_eq!(dkim_domains(sigs), ["corp.example", "mail.other.example", ""]);
    }
}
