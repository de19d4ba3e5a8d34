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
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: None,
            data_dir: PathBuf::from("data"),
            command_timeout: 5.0,
            answer_unknown_phones: true,
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
