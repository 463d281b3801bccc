//! Silences in the state table: one item (`pk = silences`) maps each silence's id to its JSON, so
//! the router reads every silence with one `GetItem` per ALARM, and an operator's command adds or
//! expires one with a conditional update. An ALARM a silence kept quiet is remembered in the
//! alarm's lifecycle record ([`crate::lifecycle`]) until its OK, which then announces nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use shared::silence::Silence;

use crate::RouterError;
use crate::groups::failed;

const SILENCES: &str = "silences";

/// How many silences one update forgets.
const PRUNED_PER_CALL: usize = 40;

/// How long an ended silence stays listed before the reconciler forgets it.
pub const KEEP_ENDED_DAYS: i64 = 7;

/// The silences in the state table.
#[derive(Debug, Clone)]
pub struct Silences<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

impl Silences<'_> {
    /// Every silence stored, active or not, oldest start first. One that does not parse is
    /// skipped with an error in the log: a broken silence must not stop alarms from paging.
    pub async fn all(&self) -> Result<Vec<Silence>, RouterError> {
        let got = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(SILENCES.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", &e))?;
        let stored = got.item().and_then(|item| item.get(SILENCES)).and_then(|v| v.as_m().ok());
        let mut silences: Vec<Silence> = stored
            .into_iter()
            .flatten()
            .filter_map(|(id, value)| {
                let parsed = value.as_s().ok().map(|json| serde_json::from_str::<Silence>(json));
                match parsed {
                    Some(Ok(silence)) => Some(silence),
                    other => {
                        tracing::error!(silence = %id, problem = ?other.map(|r| r.err()), "a stored silence does not parse; ignored");
                        None
                    }
                }
            })
            .collect();
        silences.sort_by_key(|s| (s.starts_at, s.id.clone()));
        Ok(silences)
    }

    /// Stores a new silence; refused when its id is taken.
    pub async fn add(&self, silence: &Silence) -> Result<(), RouterError> {
        silence.validate().map_err(RouterError::InvalidEvent)?;
        let json = serde_json::to_string(silence).map_err(|e| RouterError::ConfigError(e.to_string()))?;
        // The map must exist before one of its entries can be set.
        let created = self
            .client
            .put_item()
            .table_name(self.table)
            .item("pk", AttributeValue::S(SILENCES.into()))
            .item(SILENCES, AttributeValue::M(HashMap::new()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err) if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {}
            Err(err) => return Err(failed("PutItem", &err)),
        }
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(SILENCES.into()))
            .update_expression("SET silences.#id = :silence")
            .condition_expression("attribute_not_exists(silences.#id)")
            .expression_attribute_names("#id", &silence.id)
            .expression_attribute_values(":silence", AttributeValue::S(json))
            .send()
            .await
            .map_err(|e| failed("UpdateItem", &e))?;
        Ok(())
    }

    /// Forgets the silences that ended before `before` (the reconciler keeps a week of them, for
    /// "what happened" questions), so that the one item every ALARM reads does not grow for ever.
    /// Answers the ids forgotten.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<Vec<String>, RouterError> {
        let old: Vec<String> = self.all().await?.into_iter().filter(|s| s.ends_at < before).map(|s| s.id).collect();
        // An update expression is at most 4 KB: a few dozen names at a time.
        for ids in old.chunks(PRUNED_PER_CALL) {
            let names: Vec<String> = (0..ids.len()).map(|i| format!("#s{i}")).collect();
            let mut update = self
                .client
                .update_item()
                .table_name(self.table)
                .key("pk", AttributeValue::S(SILENCES.into()))
                .update_expression(format!(
                    "REMOVE {}",
                    names.iter().map(|n| format!("silences.{n}")).collect::<Vec<_>>().join(", ")
                ))
                .condition_expression("attribute_exists(pk)");
            for (name, id) in names.iter().zip(ids) {
                update = update.expression_attribute_names(name, id);
            }
            crate::groups::conditionally(update.send().await)?;
        }
        Ok(old)
    }

    /// Ends a silence at `at` (now); it stays listed as expired. Refused for an unknown id.
    pub async fn expire(&self, id: &str, at: DateTime<Utc>) -> Result<Silence, RouterError> {
        let mut silence = self
            .all()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| RouterError::InvalidEvent(format!("no silence {id}")))?;
        silence.ends_at = silence.ends_at.min(at).max(silence.starts_at);
        let json = serde_json::to_string(&silence).map_err(|e| RouterError::ConfigError(e.to_string()))?;
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(SILENCES.into()))
            .update_expression("SET silences.#id = :silence")
            .condition_expression("attribute_exists(silences.#id)")
            .expression_attribute_names("#id", id)
            .expression_attribute_values(":silence", AttributeValue::S(json))
            .send()
            .await
            .map_err(|e| failed("UpdateItem", &e))?;
        Ok(silence)
    }
}
