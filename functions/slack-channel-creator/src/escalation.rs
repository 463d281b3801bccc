//! The first-response document as the Escalate branch hands it over. It lives in `shared`, where
//! the escalation page is written from the same story the war room pins.

pub use shared::page::{
    AutomationStory, ExecutionDocument as Escalation, FailureCount, IncidentRecord, InstanceEvidence, Link,
    RemediationEvidence, TaskError,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn escalation() -> Escalation {
        let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("escalation")
    }

    #[test]
    fn the_story_says_why_a_restart_that_worked_was_not_enough() {
        // GIVEN nginx restarted and active everywhere, but the alarm kept firing
        let mut doc = escalation();
        doc.remediation.verified = Some(false);
        doc.remediation.summary =
            Some("nginx restarted and active, but the alarm still fires (ALARM 240s after the restart)".into());
        // WHEN the war room tells the story
        let story = doc.automation_story();
        // THEN the responders read the reason, not only "NOT verified"
        assert!(
            story.lines.iter().any(|l| l == "Verification: nginx restarted and active, but the alarm still fires (ALARM 240s after the restart)."),
            "{:?}",
            story.lines
        );
    }
}
