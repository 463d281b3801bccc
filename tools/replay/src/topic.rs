//! What reached the alert topic, as the emulator recorded it: the judge of a replay with faults.
//!
//! Each message the product publishes carries the SNS message attributes of
//! [`shared::page::ATTRIBUTE_NAMES`]: `route` names the route, `kind` tells a page (`escalation`,
//! `incident`) from a `recovery` or a `notification`. The safety nets publish without attributes
//! (AWS sets none on what a rule delivers), so they are counted apart, as `unattributed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What reached the topic for one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteMessages {
    pub pages: u64,
    pub recoveries: u64,
    pub notifications: u64,
}

/// What reached the topic, in total and per route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicCounts {
    pub pages: u64,
    pub recoveries: u64,
    pub notifications: u64,
    /// Messages without the product's attributes: the safety nets' pages (router failed, an
    /// execution ended without paging). Each needs a human.
    pub unattributed: u64,
    pub by_route: BTreeMap<String, RouteMessages>,
}

/// One message as the emulator's `/_first_response/topic-messages` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Listing {
    messages: Vec<Message>,
}

impl TopicCounts {
    /// Counts `messages` by their `route` and `kind` attributes.
    pub fn of(messages: &[Message]) -> Self {
        let mut counts = Self::default();
        for message in messages {
            let (Some(route), Some(kind)) = (message.attributes.get("route"), message.attributes.get("kind")) else {
                counts.unattributed += 1;
                continue;
            };
            let per_route = counts.by_route.entry(route.clone()).or_default();
            match kind.as_str() {
                "recovery" => {
                    per_route.recoveries += 1;
                    counts.recoveries += 1;
                }
                "notification" => {
                    per_route.notifications += 1;
                    counts.notifications += 1;
                }
                _ => {
                    per_route.pages += 1;
                    counts.pages += 1;
                }
            }
        }
        counts
    }

    /// A table for a person: one row per route, then the safety nets' pages.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out =
            format!("{:<28} {:>6} {:>10} {:>13}\n", "reached the topic", "pages", "recoveries", "notifications");
        for (route, m) in &self.by_route {
            let _ = writeln!(out, "  {route:<26} {:>6} {:>10} {:>13}", m.pages, m.recoveries, m.notifications);
        }
        let _ = writeln!(out, "  {:<26} {:>6}", "(safety nets, no route)", self.unattributed);
        out
    }
}

/// Every message the topic `topic_arn` received, as the emulator at `endpoint` recorded it.
pub async fn messages(endpoint: &str, topic_arn: &str) -> Result<Vec<Message>, String> {
    let url = format!("{}/_first_response/topic-messages", endpoint.trim_end_matches('/'));
    // A topic ARN holds letters, digits, '-', '_' and ':', all allowed as they are in a query.
    let answer = crate::http()
        .get(format!("{url}?topicArn={topic_arn}"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("the emulator at {url} did not list what {topic_arn} received: {e}"))?;
    let listing: Listing = answer.json().await.map_err(|e| format!("{url} answered something else: {e}"))?;
    Ok(listing.messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(attributes: &[(&str, &str)]) -> Message {
        Message {
            subject: None,
            message: String::new(),
            attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn messages_are_counted_per_route_by_kind_and_the_safety_nets_apart() {
        let messages = [
            message(&[("route", "web"), ("kind", "escalation")]),
            message(&[("route", "web"), ("kind", "recovery")]),
            message(&[("route", "db"), ("kind", "incident")]),
            message(&[("route", "default"), ("kind", "notification")]),
            message(&[]),
        ];
        let counts = TopicCounts::of(&messages);
        assert_eq!((counts.pages, counts.recoveries, counts.notifications, counts.unattributed), (2, 1, 1, 1));
        assert_eq!(counts.by_route["web"], RouteMessages { pages: 1, recoveries: 1, notifications: 0 });
        assert_eq!(counts.by_route["db"].pages, 1);
    }
}
