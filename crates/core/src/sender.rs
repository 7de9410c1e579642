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
//! A DMARC `FAIL` is final. A project may accept an unaligned SPF or DKIM pass from domains
//! that publish no DMARC policy (`GRAY`); off by default, and every use is logged.

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
    /// The project's relaxation: an unaligned pass from a domain without DMARC.
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
    if e.spf == Verdict::Pass || e.dkim == Verdict::Pass {
        return if relax_without_dmarc { Ok(Authenticated::RelaxedNoDmarc) } else { Err(Unauthenticated::NotAligned) };
    }
    Err(Unauthenticated::NoPass)
}

/// The `d=` tags of the `DKIM-Signature` header values given.
pub fn dkim_domains<'a>(signatures: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    signatures
        .into_iter()
        .filter_map(|sig| {
            sig.split(';').find_map(|tag| {
                let (k, v) = tag.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("d"))
                    .then(|| v.split_whitespace().collect::<String>().to_ascii_lowercase())
            })
        })
        .filter(|d| !d.is_empty())
        .collect()
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
                        // The relaxation only ever turns NotAligned into a pass.
                        let relaxed = authenticate(FROM, &e, true);
                        let want_relaxed = if want == Err(U::NotAligned) { Ok(A::RelaxedNoDmarc) } else { want };
                        assert_eq!(relaxed, want_relaxed, "relaxed {e:?}");
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
        assert_eq!(dkim_domains(sigs), ["corp.example", "mail.other.example"]);
    }
}
