//! The stage types, by their Promtail YAML names, and the one `match` that builds them.
//!
//! Adding a stage: a new file here with its config decoding, `build` and `impl Stage`, plus its
//! arm in [`build`] (and moving its name out of the not-yet-supported arm).

use serde_yaml::Value;

use super::stage::{BuildContext, Stage};

pub mod cri;
pub mod decolorize;
pub mod docker;
pub mod drop;
pub mod eventlogmessage;
pub mod geoip;
mod held;
pub mod json;
pub mod labelallow;
pub mod labeldrop;
pub mod labels;
pub mod limit;
pub mod logfmt;
pub mod match_stage;
pub mod metrics;
pub mod multiline;
pub mod output;
pub mod pack;
pub mod regex;
pub mod replace;
pub mod sampling;
pub mod selector;
mod source;
pub mod static_labels;
pub mod structured_metadata;
pub mod template;
pub mod tenant;
pub mod timestamp;

/// Every stage type Promtail knows (spec §7.1), by YAML name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum StageType {
    Docker,
    Cri,
    Regex,
    Json,
    Logfmt,
    Replace,
    Multiline,
    Template,
    Pack,
    Decolorize,
    Timestamp,
    Output,
    Labels,
    StructuredMetadata,
    LabelAllow,
    LabelDrop,
    StaticLabels,
    Metrics,
    Tenant,
    Limit,
    Match,
    Drop,
    Sampling,
    GeoIp,
    EventLogMessage,
}

impl StageType {
    /// The type of YAML key `name` (`non_indexed_labels` is the old name of
    /// `structured_metadata`).
    pub fn from_name(name: &str) -> Option<StageType> {
        use StageType::*;
        Some(match name {
            "docker" => Docker,
            "cri" => Cri,
            "regex" => Regex,
            "json" => Json,
            "logfmt" => Logfmt,
            "replace" => Replace,
            "multiline" => Multiline,
            "template" => Template,
            "pack" => Pack,
            "decolorize" => Decolorize,
            "timestamp" => Timestamp,
            "output" => Output,
            "labels" => Labels,
            "structured_metadata" | "non_indexed_labels" => StructuredMetadata,
            "labelallow" => LabelAllow,
            "labeldrop" => LabelDrop,
            "static_labels" => StaticLabels,
            "metrics" => Metrics,
            "tenant" => Tenant,
            "limit" => Limit,
            "match" => Match,
            "drop" => Drop,
            "sampling" => Sampling,
            "geoip" => GeoIp,
            "eventlogmessage" => EventLogMessage,
            _ => return None,
        })
    }
}

/// Why a stage could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The body is invalid (the text is Promtail's where Promtail has one).
    Invalid(String),
    /// A nested stage list (`match`'s `stages`) failed; its error names its own path.
    Nested(Box<super::PipelineError>),
}

impl From<String> for BuildError {
    fn from(s: String) -> Self {
        BuildError::Invalid(s)
    }
}

impl From<&str> for BuildError {
    fn from(s: &str) -> Self {
        BuildError::Invalid(s.to_string())
    }
}

/// Builds a stage of type `ty` from its YAML `body`.
pub fn build(ty: StageType, body: &Value, cx: &BuildContext) -> Result<Box<dyn Stage>, BuildError> {
    use StageType::*;
    Ok(match ty {
        Json => Box::new(json::JsonStage::build(body, cx)?),
        Labels => Box::new(labels::LabelsStage::build(body, cx)?),
        StaticLabels => Box::new(static_labels::StaticLabelsStage::build(body, cx)?),
        LabelDrop => Box::new(labeldrop::LabelDropStage::build(body, cx)?),
        LabelAllow => Box::new(labelallow::LabelAllowStage::build(body, cx)?),
        StructuredMetadata => Box::new(structured_metadata::StructuredMetadataStage::build(
            body, cx,
        )?),
        Output => Box::new(output::OutputStage::build(body, cx)?),
        Timestamp => Box::new(timestamp::TimestampStage::build(body, cx)?),
        Multiline => Box::new(multiline::MultilineStage::build(body, cx)?),
        Cri => Box::new(cri::CriStage::build(body, cx)?),
        Drop => Box::new(drop::DropStage::build(body, cx)?),
        Match => Box::new(match_stage::MatchStage::build(body, cx)?),
        Metrics => Box::new(metrics::MetricsStage::build(body, cx)?),
        Limit => Box::new(limit::LimitStage::build(body, cx)?),
        Sampling => Box::new(sampling::SamplingStage::build(body, cx)?),
        Regex => Box::new(regex::RegexStage::build(body, cx)?),
        Logfmt => Box::new(logfmt::LogfmtStage::build(body, cx)?),
        Docker => Box::new(docker::DockerStage::build(body, cx)?),
        Tenant => Box::new(tenant::TenantStage::build(body, cx)?),
        Decolorize => Box::new(decolorize::DecolorizeStage::build(body, cx)?),
        Pack => Box::new(pack::PackStage::build(body, cx)?),
        EventLogMessage => Box::new(eventlogmessage::EventLogMessageStage::build(body, cx)?),
        GeoIp => Box::new(geoip::GeoIpStage::build(body, cx)?),
        Template => Box::new(template::TemplateStage::build(body, cx)?),
        Replace => Box::new(replace::ReplaceStage::build(body, cx)?),
    })
}

#[cfg(test)]
pub(crate) mod testutil;
