//! `[agent]` and `[directory]`.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// This agent's name in `bridge/<name>/state` and in each phone's `info`. Default: the host name.
    pub name: Option<String>,
    /// Where the agent keeps what it learns, and the key the phones' tokens are derived from.
    pub data_dir: PathBuf,
    /// Seconds a phone has to answer one command.
    pub command_timeout: f64,
    /// Answer commands for phones this agent does not know with an error result. Turn it off
    /// when several agents share one broker, so that only the owner answers.
    pub answer_unknown_phones: bool,
    /// Seconds a due reminder is tried on a phone that does not take it (off, unreachable)
    /// before it is given up with an error result. Default: a day.
    pub reminder_expiry: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: None,
            data_dir: PathBuf::from("data"),
            command_timeout: 5.0,
            answer_unknown_phones: true,
            reminder_expiry: 86_400,
        }
    }
}

/// The PBX subscriber list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// A CSV file (extension, name, department) imported at every start.
    pub file: Option<PathBuf>,
}
