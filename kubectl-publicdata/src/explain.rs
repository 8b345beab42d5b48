//! Refusals in plain words, with what to do next.

/// The message for an error, as the bureau's people should read it.
pub fn error(e: &anyhow::Error, caller: &str) -> String {
    let api = e
        .chain()
        .find_map(|c| match c.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(s)) => Some(s.clone()),
            _ => None,
        });
    if let Some(not_a_reader) = e.downcast_ref::<crate::audit::NotAReader>() {
        return format!("refused: {not_a_reader}; you are {caller}. Ask a cluster admin.");
    }
    let Some(s) = api else {
        return format!("error: {e:#}");
    };
    let m = s.message.as_str();
    let what = if m.contains("only the bureau (group publicdata:bureau) changes spec.state") {
        format!(
            "only group publicdata:bureau may change an authorization's state; you are {caller}. \
             Ask a bureau admin, or run with your bureau identity (--as USER --as-group publicdata:bureau \
             where your cluster allows it)."
        )
    } else if m.contains("only the bureau (group publicdata:bureau) changes spec.validity") {
        format!(
            "only group publicdata:bureau may change an authorization's validity; you are {caller}. \
             Ask a bureau admin."
        )
    } else if m.contains("only a party records its own approval") {
        format!(
            "a party's approval is recorded by that party only, signed with its own name; you are {caller}. \
             The bureau approves as `bureau` (group publicdata:bureau), agency X as `agency:X` (group publicdata:agency:X)."
        )
    } else if m
        .contains("only the bureau (group publicdata:bureau) records the decision on an export")
    {
        format!(
            "only group publicdata:bureau decides on an export, as its own reviewer; you are {caller}. Ask a bureau admin."
        )
    } else if m.contains("only the bureau (group publicdata:bureau) records an annual evaluation") {
        format!(
            "only group publicdata:bureau evaluates an annual report, under its own name; you are {caller}. \
             The unit files the report and its rectification."
        )
    } else if m.contains("only the bureau (group publicdata:bureau) decides on an early exit") {
        format!(
            "only group publicdata:bureau decides on an early exit or a renewal, under its own name; you are {caller}. \
             The unit files the request."
        )
    } else if m.contains("is kept as it was") {
        "an evaluation, once recorded, is kept: after a rectification, record the new one with --again."
            .into()
    } else if m.contains("terminal") {
        "the authorization is Revoked or Terminated, which is final: its state cannot change again."
            .into()
    } else if m.contains("at most 5 years") {
        "the validity is at most 5 years (R-5): choose an end before the fifth anniversary of notBefore."
            .into()
    } else if m.contains("new decision reference") {
        "each change needs a new decision reference: --decision must differ from the last one."
            .into()
    } else if s.code == 403 {
        format!("{caller} may not do this (RBAC): {m}. Ask a cluster admin for the bureau's role.")
    } else if s.code == 404 {
        format!("not found: {m}. `kubectl get oa` lists the authorizations.")
    } else {
        m.to_string()
    };
    format!("refused: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> anyhow::Error {
        anyhow::Error::new(kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.into(),
            ..Default::default()
        })))
        .context("setting t to Suspended")
    }

    #[test]
    fn a_state_refusal_says_who_may_and_who_you_are() {
        let e = api(
            403,
            "ValidatingAdmissionPolicy 'publicdata-state-by-bureau' with binding 'publicdata-state-by-bureau' denied request: only the bureau (group publicdata:bureau) changes spec.state or spec.stateChange; alice is not in it",
        );
        let text = error(&e, "alice");
        assert!(
            text.starts_with("refused: only group publicdata:bureau may change"),
            "{text}"
        );
        assert!(text.contains("you are alice"), "{text}");
    }

    #[test]
    fn other_refusals_name_the_rule() {
        assert!(
            error(&api(422, "Revoked and Terminated are terminal: ..."), "b").contains("final")
        );
        assert!(
            error(&api(404, "operatorauthorizations \"x\" not found"), "b")
                .contains("kubectl get oa")
        );
        assert!(error(&api(403, "cannot patch resource"), "bob").contains("bob may not do this"));
    }
}
