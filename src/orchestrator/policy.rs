//! The decision policy: which command an alert or a prediction calls for, configured in a TOML
//! file (assets/policies/default.toml). Rules are tried in order; the first that matches
//! decides.
//!
//! ```toml
//! [[rule]]
//! name = "brake failure stops the vehicle"
//! when = { component = "brakes", severity = "critical" }
//! action = "stop"
//!
//! [[rule]]
//! name = "predicted failure: maintenance, no new missions"
//! when = { failure_within_h = 8 }
//! action = "schedule_maintenance"
//! hold_missions = true
//! ```

use std::path::Path;

use serde::Deserialize;

use super::alerts::AlertRecord;
use crate::model::{CommandAction, Component, Severity};
use crate::scenario::ScenarioError;

/// What a rule matches; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// The alert's component.
    pub component: Option<Component>,
    /// The alert's type, e.g. `overheating`.
    pub alert_type: Option<String>,
    /// The alert is at least this severe.
    pub severity: Option<Severity>,
    /// Failure is predicted within this many hours.
    pub failure_within_h: Option<f32>,
}

/// The command a rule calls for, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// Cap the speed (at `max_kph`).
    ReduceSpeed,
    /// Drive to the home depot.
    ReturnToDepot,
    /// Stop as soon as safe.
    Stop,
    /// Drive to a depot and be repaired.
    ScheduleMaintenance,
    /// Only raise the alert.
    None,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// For logs and audit.
    pub name: String,
    /// What it matches.
    pub when: When,
    /// What it calls for.
    pub action: PolicyAction,
    /// Speed cap for `reduce_speed`.
    pub max_kph: Option<f32>,
    /// Assign the vehicle no new missions while the alert is active.
    #[serde(default)]
    pub hold_missions: bool,
    /// Once the vehicle stands still, book it in for maintenance: it is recovered by truck if
    /// it cannot drive.
    #[serde(default)]
    pub recover: bool,
}

/// What the policy decided for an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The rule that matched.
    pub rule: String,
    /// The command to send, if any.
    pub command: Option<CommandAction>,
    /// Assign no new missions.
    pub hold_missions: bool,
    /// Book the vehicle in once it has stopped.
    pub recover: bool,
}

/// When a prediction counts, from the policy file's `[prediction]` table.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionSettings {
    /// A component is predicted to fail within a horizon once its probability reaches this.
    #[serde(default = "default_probability")]
    pub probability: f32,
    /// Consecutive evaluations (one a simulated minute) a prediction must hold before it is
    /// raised, and be absent before it is lifted.
    #[serde(default = "default_sustain")]
    pub sustain: u32,
}

impl Default for PredictionSettings {
    fn default() -> Self {
        Self { probability: default_probability(), sustain: default_sustain() }
    }
}

fn default_probability() -> f32 {
    0.7
}

fn default_sustain() -> u32 {
    3
}

/// How alerts age, from the policy file's `[alerts]` table.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTimes {
    /// Unacknowledged critical alerts escalate after this long, like "10m".
    #[serde(default = "default_escalate_after", deserialize_with = "duration_s")]
    pub escalate_after: f64,
    /// An alert raised again within this long of clearing reopens, like "5m".
    #[serde(default = "default_reopen_within", deserialize_with = "duration_s")]
    pub reopen_within: f64,
}

impl Default for AlertTimes {
    fn default() -> Self {
        Self { escalate_after: default_escalate_after(), reopen_within: default_reopen_within() }
    }
}

fn default_escalate_after() -> f64 {
    600.0
}

fn default_reopen_within() -> f64 {
    300.0
}

fn duration_s<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::scenario::parse_duration(&text).map(|d| d.as_secs_f64()).map_err(serde::de::Error::custom)
}

/// The ordered rules, and how alerts age.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Escalation and reopening.
    #[serde(default)]
    pub alerts: AlertTimes,
    /// When a model's prediction becomes an alert.
    #[serde(default)]
    pub prediction: PredictionSettings,
    /// Tried in order.
    #[serde(rename = "rule")]
    pub rules: Vec<PolicyRule>,
}

/// The policy shipped with AEGIS.
pub const DEFAULT_POLICY: &str = include_str!("../../assets/policies/default.toml");

impl Policy {
    /// The policy shipped with AEGIS (assets/policies/default.toml).
    pub fn shipped() -> Policy {
        Self::parse(DEFAULT_POLICY, Path::new("assets/policies/default.toml")).expect("the shipped policy parses (a unit test checks it)")
    }

    /// Reads a policy file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Policy, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Parses policy text.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, ScenarioError> {
        let invalid = |offset: usize, message: String| {
            let (line, column) = crate::scenario::line_column(text, offset);
            ScenarioError::Invalid { path: path.to_owned(), line, column, message }
        };
        let policy: Policy = toml::from_str(text).map_err(|e| invalid(e.span().map_or(0, |s| s.start), e.message().trim().to_owned()))?;
        let prediction = policy.prediction;
        let probability_ok = prediction.probability > 0.0 && prediction.probability < 1.0;
        if !probability_ok || !(1..=1000).contains(&prediction.sustain) {
            let at = text.find("[prediction]").unwrap_or(0);
            return Err(invalid(at, format!("prediction: expected a probability between 0 and 1 and a sustain of 1 to 1000 evaluations, found {} and {}", prediction.probability, prediction.sustain)));
        }
        for rule in &policy.rules {
            let at = text.find(&format!("\"{}\"", rule.name)).unwrap_or(0);
            if rule.action == PolicyAction::ReduceSpeed && !rule.max_kph.is_some_and(|v| v.is_finite() && (0.0..=250.0).contains(&v)) {
                return Err(invalid(at, format!("rule `{}`: reduce_speed needs max_kph between 0 and 250", rule.name)));
            }
            if rule.when == When::default() {
                return Err(invalid(at, format!("rule `{}`: `when` matches nothing in particular; give at least one condition", rule.name)));
            }
        }
        Ok(policy)
    }

    /// The decision for `alert`, from the first rule that matches; `None` when none does.
    pub fn decide(&self, alert: &AlertRecord) -> Option<Decision> {
        let rule = self.rules.iter().find(|rule| {
            let w = &rule.when;
            w.component.is_none_or(|c| c == alert.key.component)
                && w.alert_type.as_deref().is_none_or(|t| t == alert.key.alert_type)
                // `Severity` orders most severe first.
                && w.severity.is_none_or(|s| alert.severity <= s)
                && w.failure_within_h.is_none_or(|h| alert.time_to_failure_h.is_some_and(|t| t <= h))
        })?;
        let command = match rule.action {
            PolicyAction::ReduceSpeed => Some(CommandAction::ReduceSpeed { max_kph: rule.max_kph.unwrap_or(40.0) }),
            PolicyAction::ReturnToDepot => Some(CommandAction::ReturnToDepot),
            PolicyAction::Stop => Some(CommandAction::Stop),
            PolicyAction::ScheduleMaintenance => Some(CommandAction::ScheduleMaintenance),
            PolicyAction::None => None,
        };
        Some(Decision { rule: rule.name.clone(), command, hold_missions: rule.hold_missions, recover: rule.recover })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Recommendation, RecommendedAction, VehicleId};
    use crate::orchestrator::alerts::{AlertKey, AlertPolicy, AlertStore, Condition, Observation, Origin};

    /// An active alert, raised through the store as the orchestrator raises them.
    fn alert(component: Component, alert_type: &str, severity: Severity, time_to_failure_h: Option<f32>) -> AlertRecord {
        let mut store = AlertStore::new(AlertPolicy { raise_after_s: 0.0, ..AlertPolicy::default() });
        let id = store
            .observe(Observation {
                key: AlertKey { vehicle: VehicleId(1), component, alert_type: alert_type.into() },
                at: 0.0,
                condition: Condition::Raise,
                severity,
                origin: Origin::CentralRule,
                evidence: Vec::new(),
                recommendation: Recommendation { action: RecommendedAction::Monitor, reason: String::new(), within_hours: None },
                confidence: 1.0,
                time_to_failure_h,
            })
            .expect("raised at once");
        store.get(&id).expect("just raised").clone()
    }

    #[test]
    fn the_shipped_policy_maps_alerts_to_commands() {
        let policy = Policy::shipped();
        assert_eq!((policy.alerts.escalate_after, policy.alerts.reopen_within), (600.0, 300.0));
        assert_eq!((policy.prediction.probability, policy.prediction.sustain), (0.7, 3));
        let decide = |a: AlertRecord| policy.decide(&a).map(|d| (d.command, d.hold_missions));
        assert_eq!(decide(alert(Component::Brakes, "brake_failure", Severity::Critical, None)), Some((Some(CommandAction::Stop), true)));
        assert_eq!(decide(alert(Component::CoolingSystem, "overheating", Severity::Major, None)), Some((Some(CommandAction::ScheduleMaintenance), true)));
        assert_eq!(decide(alert(Component::Battery, "battery_weak", Severity::Minor, Some(5.0))), Some((Some(CommandAction::ScheduleMaintenance), true)));
        assert_eq!(decide(alert(Component::Battery, "battery_weak", Severity::Minor, Some(50.0))), Some((Some(CommandAction::ScheduleMaintenance), false)));
        assert_eq!(decide(alert(Component::Engine, "oil_leak_suspected", Severity::Minor, Some(50.0))), None, "minor and far off: no rule");
        assert_eq!(decide(alert(Component::Sensors, "sensor_stuck", Severity::Warning, None)), Some((Some(CommandAction::ScheduleMaintenance), false)), "replace it, keep driving");
        assert_eq!(decide(alert(Component::Engine, "misfire", Severity::Major, None)), Some((Some(CommandAction::ReduceSpeed { max_kph: 60.0 }), false)));
    }

    #[test]
    fn a_bad_policy_is_named_with_its_place() {
        let error = Policy::parse("[[rule]]\nname = \"x\"\nwhen = { component = \"wings\" }\naction = \"stop\"\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(error.starts_with("p.toml:3:") && error.contains("wings"), "{error}");
        let error = Policy::parse("[[rule]]\nname = \"slow\"\nwhen = { alert_type = \"x\" }\naction = \"reduce_speed\"\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(error.contains("max_kph") && error.starts_with("p.toml:2:"), "{error}");
        let error = Policy::parse("[[rule]]\nname = \"all\"\nwhen = {}\naction = \"stop\"\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(error.contains("at least one condition"), "{error}");
        let error = Policy::parse("[alerts]\nescalate_after = \"soon\"\n[[rule]]\nname = \"x\"\nwhen = { alert_type = \"x\" }\naction = \"stop\"\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(error.starts_with("p.toml:2:") && error.contains("soon"), "{error}");
        let error = Policy::parse("[prediction]\nprobability = 1.5\n[[rule]]\nname = \"x\"\nwhen = { alert_type = \"x\" }\naction = \"stop\"\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(error.starts_with("p.toml:1:") && error.contains("prediction") && error.contains("1.5"), "{error}");
    }
}
