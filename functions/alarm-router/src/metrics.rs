//! What the router's decisions and pages mean as metrics (see `shared::metrics`): pages sent,
//! pages avoided and why, and escalations. Pure functions of what was decided, so tests read them.

use shared::Action;
use shared::metrics::{Measurement, Metric, Reason};
use shared::page::Page;

use crate::{Decision, Outcome, PageRequest, suppression_of};

/// The measurements of one routing decision. A notification is not a page; an execution's own
/// escalation is measured when its page is written, not here.
pub fn of_decision(decision: &Decision) -> Vec<Measurement> {
    let route = decision.route.name.as_str();
    let pages = matches!(decision.route.action, Action::Incident | Action::Remediate);
    match &decision.outcome {
        Outcome::OpenedIncident { .. } => vec![Measurement::count(Metric::PagesSent, route)],
        // An incident route's page, or a remediation that could not start and paged instead.
        Outcome::Published { fallback_from, .. }
            if decision.route.action == Action::Incident || fallback_from.is_some() =>
        {
            vec![Measurement::count(Metric::PagesSent, route)]
        }
        Outcome::Flapping { message_id: Some(_), .. } => vec![Measurement::count(Metric::PagesSent, route)],
        Outcome::Flapping { message_id: None, .. } if pages => vec![Measurement::avoided(route, Reason::Flapping)],
        // A member of an open group that would have paged by itself.
        Outcome::Grouped { execution_arn: None, .. } if decision.route.action == Action::Incident => {
            vec![Measurement::avoided(route, Reason::Grouped)]
        }
        // Kept quiet with no automation; with automation, its escalation is measured instead.
        Outcome::Silenced { silence, execution_arn: None, .. } if pages => {
            vec![Measurement::avoided(route, suppression_of(silence).into())]
        }
        _ => Vec::new(),
    }
}

/// The measurements of one page the state machine asked for: an escalation pages or is kept quiet
/// (by its group, or a silence that let automation run); a recovery is a page the automation
/// avoided by fixing the alarm.
pub fn of_page(request: PageRequest, route: &str, page: &Page) -> Vec<Measurement> {
    match request {
        PageRequest::Escalation => vec![
            Measurement::count(Metric::RemediationsEscalated, route),
            match page.suppressed_by {
                Some(by) if page.suppressed => Measurement::avoided(route, by.into()),
                _ => Measurement::count(Metric::PagesSent, route),
            },
        ],
        PageRequest::Recovery => vec![Measurement::avoided(route, Reason::AutoFixed)],
    }
}
