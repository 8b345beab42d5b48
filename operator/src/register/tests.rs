use super::*;
use crate::api::authorization::{OperatorAuthorizationStatus, PhaseChange};

fn example() -> OperatorAuthorization {
    let text = include_str!("../../../examples/authorization.yaml");
    serde_yaml::from_str(text).expect("the example authorization parses")
}

fn suspended() -> OperatorAuthorization {
    let mut oa = example();
    oa.status = Some(OperatorAuthorizationStatus {
        phase: Some(Phase::Suspended),
        history: vec![
            PhaseChange {
                phase: Phase::Active,
                since: "2026-01-01T08:00:00Z".into(),
                decision: None,
            },
            PhaseChange {
                phase: Phase::Suspended,
                since: "2026-11-27T09:30:00Z".into(),
                decision: Some("PDB-2026-117".into()),
            },
        ],
        ..Default::default()
    });
    oa
}

#[test]
fn the_register_says_who_where_how_long_and_what_state_since_when() {
    let e = entry(&suspended());
    assert_eq!(e.unit, "Harbor Analytics Co., Ltd.");
    assert_eq!(e.credit_code, "91330100MA2H3K5L7U");
    assert_eq!(e.domains, ["Transport", "EnterpriseRegistration"]);
    assert_eq!(
        (e.valid_from.as_str(), e.valid_until.as_str()),
        ("2026-01-01", "2030-12-31")
    );
    assert_eq!(e.state, "Suspended");
    assert_eq!(e.since.as_deref(), Some("2026-11-27T09:30:00Z"));
    assert_eq!(e.changes[1].decision.as_deref(), Some("PDB-2026-117"));
    // Not yet reconciled: pending, no date.
    let fresh = entry(&example());
    assert_eq!((fresh.state.as_str(), fresh.since), ("Pending", None));
}

#[test]
fn no_personal_data_reaches_the_register() {
    let oa = suspended();
    let r = register(std::slice::from_ref(&oa), "2026-11-27T10:00:00Z".into());
    let json = serde_json::to_string(&r).unwrap();
    let page = html(&r);
    let mut personal: Vec<String> = vec![
        oa.spec.security_officer.name.clone(),
        oa.spec.security_officer.contact.clone().unwrap_or_default(),
        oa.spec.agreement.reference.clone(),
    ];
    for m in &oa.spec.members {
        personal.push(m.user.clone());
        personal.push(m.real_name.clone());
        personal.push(m.real_name_id.clone());
    }
    for c in &oa.spec.emergency_plan.as_ref().unwrap().contacts {
        personal.push(c.contact.clone());
    }
    for p in personal {
        assert!(!json.contains(&p), "{p} in the JSON");
        assert!(!page.contains(&p), "{p} in the page");
    }
}

#[test]
fn the_page_escapes_what_units_wrote_and_sorts_by_name() {
    let mut odd = suspended();
    odd.spec.unit.name = "<script>alert('x')</script> & Co".into();
    let r = register(&[suspended(), odd], "now".into());
    assert_eq!(r.units[0].unit, "<script>alert('x')</script> & Co");
    let page = html(&r);
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co"));
    assert!(
        page.contains("2026-11-27 Suspended (PDB-2026-117)"),
        "{page}"
    );
    assert!(page.contains("2 unit(s)"));
}
