//! How simulated phones read every setting of their provisioning files (not only the Action
//! URLs): the site's SIP accounts, programmable keys, the logo, pushed settings. Written from the
//! vendors' file formats (docs/vendor-keys-research.md), apart from the agent's writers, so that
//! a writer that drifts from the format is caught by the phone that cannot read it.

use std::collections::BTreeMap;

pub type Settings = BTreeMap<String, String>;

/// `key = value` lines (Yealink); `#` starts a comment, `include:config` lines are not settings.
pub fn read_key_value(text: &str, settings: &mut Settings) {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with("include:") {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let (key, value) = (key.trim(), value.trim());
            if !key.is_empty() {
                settings.insert(key.to_string(), value.to_string());
            }
        }
    }
}

/// The files a Yealink boot file includes, in order.
pub fn boot_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("include:config"))
        .map(|rest| rest.trim().trim_matches('"').to_string())
        .filter(|file| !file.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_lines_and_boot_includes() {
        let mut settings = Settings::new();
        read_key_value(
            "#!version:1.0.0.1\naccount.1.user_name = 1001\ninclude:config \"x\"\n",
            &mut settings,
        );
        assert_eq!(settings["account.1.user_name"], "1001");
        assert_eq!(
            boot_includes("#!version:1.0.0.1\ninclude:config \"http://a/b.cfg\"\n"),
            vec!["http://a/b.cfg"]
        );
    }
}
