//! Vendors, declared as data.
//!
//! Each vendor file exports one [`VendorSpec`]: the events its phones send (with their variable
//! spellings), the commands it can do, the `[[phone]]` options its phones read beyond what every
//! phone has (its quirks: [`PhoneOption`]), and pure functions that build Action URI requests, read
//! the replies and write provisioning files. Nothing here does I/O or knows a topic. The README
//! matrix, `GET /api/vendors` (the Manager's buttons) and the simulator all read these tables.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::model::{Command, CommandError, CommandKind, EventKind, ForwardKind, PhoneId};

pub mod fanvil;
pub mod grandstream;
pub mod htek;
pub mod merge;
mod options;
pub mod snom;
pub mod yealink;

pub use options::{OptionSpec, PhoneOption, PhoneOptions};

/// Every vendor phone2mqtt knows. Adding a vendor adds one line here.
pub static VENDORS: &[&VendorSpec] = &[
    &yealink::SPEC,
    &grandstream::SPEC,
    &snom::SPEC,
    &fanvil::SPEC,
    &htek::SPEC,
];

pub fn find(id: &str) -> Option<&'static VendorSpec> {
    VENDORS
        .iter()
        .copied()
        .find(|spec| spec.id.eq_ignore_ascii_case(id))
}

pub fn names() -> Vec<&'static str> {
    VENDORS.iter().map(|spec| spec.id).collect()
}

/// One vendor's declaration.
#[derive(Debug)]
pub struct VendorSpec {
    pub id: &'static str,
    pub name: &'static str,
    /// MAC prefixes (6 lowercase hex digits) of this vendor's phones.
    pub ouis: &'static [&'static str],
    /// Action URL events: the vendor's own name, the normalised one, what it carries.
    pub events: &'static [EventSpec],
    /// How this vendor spells the Action URL variables.
    pub vars: VarNames,
    /// The normalised commands it can do.
    pub commands: &'static [CommandKind],
    /// The `[[phone]]` options its phones read beyond what every phone has (its quirks), with
    /// what each means for them; config refuses the others on its phones.
    pub options: &'static [OptionSpec],
    /// How the Action URI authenticates.
    pub http_auth: HttpAuth,
    /// What to tell the user when the phone answers 401 or 403.
    pub auth_hints: AuthHints,
    /// Reads model, firmware and MAC from a User-Agent, or `None` if it is not this vendor's.
    pub recognise: fn(&str) -> Option<Identity>,
    /// Builds the Action URI request for a command this vendor declared.
    pub build: fn(&Command, &Target) -> Result<PhoneRequest, CommandError>,
    /// Reads a 2xx/3xx reply; may refuse it (a JSON error body) or extract state.
    pub read_reply: fn(&Command, &PhoneReply) -> Result<ReplyOutcome, CommandError>,
    /// Writes the provisioning file that points a phone at the agent.
    pub provision: fn(&ProvisionCtx) -> String,
    /// Whether a provisioning path (`0015654aa937.cfg`) is one this vendor's phones request;
    /// with the MAC it names, if any.
    pub provision_file: fn(&str) -> Option<Option<PhoneId>>,
    /// The files its phones request, for the docs.
    pub provision_files_doc: &'static str,
    /// A boot file that includes the site's file, then the agent's (`(site_url, own_url)`),
    /// served instead of a merge when `[provisioning] yealink_boot` asks for it; `None` where
    /// the vendor has no such file.
    pub boot_file: Option<fn(&str, &str) -> String>,
    /// How per-phone additions (keys, logo, settings) are written into its files.
    pub programming: Programming,
    /// Reading the phone's own configuration back, where the vendor allows it (`verify`).
    pub read_config: Option<ReadConfig>,
    /// Where the phone takes the provisioning server's username and password, for what
    /// `provision` prints when `[provisioning] auth_username` is set.
    pub provisioning_credentials: &'static str,
}

/// A setting as a vendor's file writes it: its config key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Setting {
        Setting {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A vendor's provisioning file format, for merging with a site's own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `key = value` lines under a header line the phone requires.
    KeyValue {
        header: &'static str,
    },
    Xml,
}

impl FileFormat {
    /// Puts phone2mqtt's file into the site's, keeping everything phone2mqtt does not set.
    pub fn merge(self, site: &str, ours: &str) -> Result<String, merge::MergeError> {
        match self {
            FileFormat::KeyValue { header } => Ok(merge::merge_text(site, ours, header)),
            FileFormat::Xml => merge::merge_xml(site, ours),
        }
    }
}

/// Programs key `index` (1-based) with its label to request a URL: `(index, label, url)`.
pub type KeyProgram = fn(u32, &str, &str) -> Vec<Setting>;

/// How per-phone additions are programmed.
#[derive(Debug)]
pub struct Programming {
    pub format: FileFormat,
    /// The settings that make programmable key `index` (1-based) open `url`, labelled; `None`
    /// where the vendor has no key type that sends an HTTP request.
    pub key: Option<KeyProgram>,
    /// What is programmed, for the docs: `linekey.N, type 17 (URL)`.
    pub key_doc: &'static str,
    /// The settings that show the image at `url` as the screen's logo or background; `None`
    /// where the vendor documents no such setting.
    pub logo: Option<fn(&str) -> Vec<Setting>>,
    /// The largest image a model shows (width, height); logos are scaled to fit.
    pub logo_size: fn(Option<&str>) -> (u32, u32),
    /// What the logo setting is, for the docs.
    pub logo_doc: &'static str,
    /// Writes settings as a file of this vendor's format, to be merged into the served one.
    pub write: fn(&[Setting]) -> String,
}

/// Reading settings back from the phone.
#[derive(Debug)]
pub struct ReadConfig {
    /// The request that reads these settings.
    pub build: fn(&[String], &Target) -> PhoneRequest,
    /// The settings the reply holds, by key.
    pub parse: fn(&PhoneReply) -> Result<BTreeMap<String, String>, CommandError>,
}

impl VendorSpec {
    /// `configure` and `verify` are the agent's own work, for every vendor; `logo` is there
    /// where the vendor has a logo setting.
    pub fn supports(&self, kind: CommandKind) -> bool {
        match kind {
            CommandKind::Configure | CommandKind::Verify => true,
            CommandKind::Logo => self.programming.logo.is_some(),
            CommandKind::Adopt => false,
            _ => self.commands.contains(&kind),
        }
    }

    pub fn event(&self, wire: &str) -> Option<&EventSpec> {
        self.events.iter().find(|spec| spec.wire == wire)
    }

    /// Whether its phones read this `[[phone]]` option.
    pub fn reads(&self, option: PhoneOption) -> bool {
        self.options.iter().any(|spec| spec.option == option)
    }
}

/// One Action URL event.
#[derive(Debug)]
pub struct EventSpec {
    /// The vendor's name for it, used in the Action URL path (`incoming_call`).
    pub wire: &'static str,
    /// The normalised event published on MQTT.
    pub event: EventKind,
    /// Which variables the provisioned URL asks the phone to fill in.
    pub carries: Carries,
    /// For forward events: `always`, `busy` or `no_answer`.
    pub forward: Option<ForwardKind>,
    /// The vendor's config key or label for this event, for docs.
    pub setting: &'static str,
}

/// A row of a vendor's event table: its wire name, the event, what it carries, its setting.
pub const fn event(
    wire: &'static str,
    event: EventKind,
    carries: Carries,
    setting: &'static str,
) -> EventSpec {
    EventSpec {
        wire,
        event,
        carries,
        forward: None,
        setting,
    }
}

/// A forward event's row: it carries the account and says which forward changed.
pub const fn forward(
    wire: &'static str,
    event: EventKind,
    kind: ForwardKind,
    setting: &'static str,
) -> EventSpec {
    EventSpec {
        wire,
        event,
        carries: Carries::Account,
        forward: Some(kind),
        setting,
    }
}

/// Variable sets an event's URL carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// mac, ip, model, firmware.
    Device,
    /// Device plus the account (active_user, active_host).
    Account,
    /// Account plus the call (local, remote, display names, call id).
    Call,
}

/// A vendor's spelling of each variable; `None` where it has no such variable.
#[derive(Debug)]
pub struct VarNames {
    pub mac: &'static str,
    pub ip: Option<&'static str>,
    pub model: Option<&'static str>,
    pub firmware: Option<&'static str>,
    pub active_user: Option<&'static str>,
    pub active_host: Option<&'static str>,
    pub local: Option<&'static str>,
    pub remote: Option<&'static str>,
    pub display_local: Option<&'static str>,
    pub display_remote: Option<&'static str>,
    pub call_id: Option<&'static str>,
}

impl VarNames {
    /// The variables an event carries, in URL order.
    pub fn for_event(&self, carries: Carries) -> Vec<&'static str> {
        let mut names = vec![Some(self.mac), self.ip, self.model, self.firmware];
        if carries != Carries::Device {
            names.extend([self.active_user, self.active_host]);
        }
        if carries == Carries::Call {
            names.extend([
                self.local,
                self.remote,
                self.display_local,
                self.display_remote,
                self.call_id,
            ]);
        }
        names.into_iter().flatten().collect()
    }
}

#[derive(Debug)]
pub struct AuthHints {
    pub unauthorized: &'static str,
    pub forbidden: &'static str,
}

/// Model, firmware and MAC as a phone announces them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub mac: Option<PhoneId>,
}

/// What a command needs to know about its phone beyond the command itself.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The configured SIP identity (`1001@pbx.example.com`).
    pub line: Option<String>,
    /// The current call's id, when the phone told us.
    pub call_id: Option<String>,
    /// The agent's own address, for commands that make the phone fetch something from it.
    pub agent_url: Option<String>,
    /// The phone's admin password, for vendors that take it in the query (Grandstream
    /// `passcode`). Vendors with HTTP auth never put it in a request they build.
    pub password: String,
    /// Whether DND is on now, for vendors whose only DND control is a toggle.
    pub dnd: bool,
    /// The `[[phone]]` options of this phone that its vendor reads ([`VendorSpec::options`]);
    /// the others are at their defaults.
    pub options: PhoneOptions,
}

/// How a vendor's Action URI authenticates: how the agent sends the phone's admin password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAuth {
    /// HTTP Basic with the phone's admin account on every request, as the vendor documents
    /// (Basic is the only scheme its Action URI takes).
    Basic,
    /// The vendor can take Digest: no password until the phone challenges. A Digest challenge
    /// is answered with Digest and remembered, so later requests answer it at once; a Basic
    /// challenge (the vendor's factory scheme) is answered only while the phone has never asked
    /// for Digest. Never a Basic header the phone did not ask for.
    Digest,
    /// None on the HTTP level: the vendor takes the password in the query.
    InQuery,
}

impl HttpAuth {
    /// How the documentation's vendor table says it.
    pub fn describe(self) -> &'static str {
        match self {
            HttpAuth::Basic => "HTTP Basic on every request (the scheme the vendor documents for its Action URI)",
            HttpAuth::Digest => "nothing until the phone challenges; HTTP Digest in answer to a Digest challenge (remembered, so later requests answer it at once); HTTP Basic only to a phone that asks for Basic and has never asked for Digest",
            HttpAuth::InQuery => "in the query string (the vendor's API takes it there; see the vendor's notes)",
        }
    }
}

/// An Action URI request, exact to the byte: `path_and_query` is sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneRequest {
    pub method: Method,
    pub path_and_query: String,
    pub body: Option<(&'static str, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl PhoneRequest {
    pub fn get(path_and_query: String) -> PhoneRequest {
        PhoneRequest {
            method: Method::Get,
            path_and_query,
            body: None,
        }
    }
}

/// A phone's answer, as the agent received it.
#[derive(Debug, Clone)]
pub struct PhoneReply {
    pub status: u16,
    pub body: String,
}

/// What a successful reply tells us.
#[derive(Debug, Clone, Default)]
pub struct ReplyOutcome {
    /// Returned to the caller in the result's `data`.
    pub data: Option<Value>,
    /// State read from the phone (`refresh`).
    pub refreshed: Option<Refreshed>,
    /// The command ended the call and the phone reports no event for that (a Snom rejecting a
    /// ringing call): the agent sets the call state to idle itself.
    pub call_ended: bool,
}

/// Phone state read back with `refresh`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refreshed {
    pub dnd: Option<bool>,
    pub firmware: Option<String>,
    pub lines: Vec<crate::model::Line>,
}

/// What provisioning needs to know.
#[derive(Debug, Clone)]
pub struct ProvisionCtx {
    /// `http://192.168.1.10:8080`, how phones reach the agent.
    pub public_url: String,
    /// The phone's own Action URL token; `None` for a file every phone may fetch (a generic
    /// file, `provision` without a MAC), which then carries no Action URL at all.
    pub token: Option<String>,
    /// The agent's address as phones see it, for Action URI allow lists.
    pub agent_host: String,
    /// A vendor's alternative file format, when it has one (Grandstream `v2` aliases);
    /// `None` for the default.
    pub format: Option<String>,
}

/// The URL a programmable key calls: the MAC is written in, since phones fill in no variables
/// on key URLs. `None` without the phone's token.
pub fn key_url(ctx: &ProvisionCtx, spec: &VendorSpec, mac: &PhoneId, index: u32) -> Option<String> {
    Some(format!(
        "{}/action/{}/{}/key?mac={mac}&key={index}",
        ctx.public_url.trim_end_matches('/'),
        ctx.token.as_deref()?,
        spec.id
    ))
}

/// Every setting phone2mqtt adds to one phone's file, in order: keys, logo, then the site's own
/// settings (which win, so a site can correct a key type on a model that differs).
/// What the vendor cannot program comes back as a reason each.
pub fn phone_settings(
    spec: &VendorSpec,
    ctx: &ProvisionCtx,
    mac: &PhoneId,
    profile: &crate::profile::Profile,
    logo_url: Option<&str>,
) -> (Vec<Setting>, Vec<String>) {
    let mut settings = Vec::new();
    let mut refused = Vec::new();
    for key in &profile.keys {
        match (spec.programming.key, key_url(ctx, spec, mac, key.index)) {
            (Some(program), Some(url)) => settings.extend(program(key.index, &key.label, &url)),
            (Some(_), None) => refused.push(format!(
                "key {} (\"{}\") needs the phone's own file: it carries the phone's token",
                key.index, key.label
            )),
            (None, _) => refused.push(format!(
                "{} phones have no key type that calls a URL: key {} (\"{}\") is not programmed",
                spec.name, key.index, key.label
            )),
        }
    }
    if let Some(url) = logo_url {
        match spec.programming.logo {
            Some(program) => settings.extend(program(url)),
            None => refused.push(format!("{} phones have no logo setting", spec.name)),
        }
    }
    for (key, value) in &profile.settings {
        settings.retain(|s| &s.key != key);
        settings.push(Setting::new(key.clone(), value.clone()));
    }
    (settings, refused)
}

impl ProvisionCtx {
    /// The same context for one phone's own file, with that phone's token.
    pub fn for_phone(&self, token: String) -> ProvisionCtx {
        ProvisionCtx {
            token: Some(token),
            ..self.clone()
        }
    }

    /// The Action URL for one event, with the vendor's variables; `None` in a generic file,
    /// which has no phone's token to put in it.
    pub fn action_url(&self, spec: &VendorSpec, event: &EventSpec) -> Option<String> {
        let token = self.token.as_deref()?;
        let query: Vec<String> = spec
            .vars
            .for_event(event.carries)
            .iter()
            .map(|name| format!("{}=${name}", query_key(name)))
            .collect();
        Some(format!(
            "{}/action/{}/{}/{}?{}",
            self.public_url.trim_end_matches('/'),
            token,
            spec.id,
            event.wire,
            query.join("&")
        ))
    }
}

/// The query key a variable is sent under: its own name, hyphens kept.
fn query_key(var: &str) -> &str {
    var
}

/// Percent-encodes a query value as docs/vendors.md §0.1 says: `+` is `%2B`, `#` is `%23`; `*` and `@`
/// stay literal, as the clients that work with real phones send them.
pub fn encode_query_value(value: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    /// Everything but letters, digits and `-._~*@`.
    const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'*')
        .remove(b'@');
    utf8_percent_encode(value, ENCODED).to_string()
}

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Parses a User-Agent of the common form `<Vendor> <model...> <firmware> [<mac>]`, as Yealink,
/// Fanvil and Htek send it. Tolerates a lower-case vendor, double spaces, spaces inside the
/// model, `Vendor-Model` run together, a missing vendor word and a missing MAC.
pub fn parse_plain_user_agent(user_agent: &str, vendor_word: &str) -> Identity {
    let tokens: Vec<&str> = user_agent.split_whitespace().collect();
    let mut start = 0;
    let mut first_model: Option<String> = None;
    if let Some(first) = tokens.first() {
        if first.eq_ignore_ascii_case(vendor_word) {
            start = 1;
        } else if first.len() > vendor_word.len()
            // Bytes, not `str` slices: the cut may fall inside a character.
            && first.as_bytes()[..vendor_word.len()].eq_ignore_ascii_case(vendor_word.as_bytes())
            && first.as_bytes()[vendor_word.len()] == b'-'
        {
            first_model = Some(first[vendor_word.len() + 1..].to_string());
            start = 1;
        }
    }
    let is_firmware = |t: &str| {
        t.split('.').count() >= 3
            && t.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    let Some(fw_index) = tokens
        .iter()
        .skip(start)
        .position(|t| is_firmware(t))
        .map(|i| i + start)
    else {
        return Identity::default();
    };
    let mut model_parts: Vec<String> = first_model.into_iter().collect();
    model_parts.extend(tokens[start..fw_index].iter().map(|t| t.to_string()));
    let model = (!model_parts.is_empty()).then(|| model_parts.join(" "));
    let mac = tokens
        .get(fw_index + 1)
        .and_then(|t| t.contains(':').then_some(*t).or(Some(*t)))
        .filter(|t| t.len() == 12 || t.len() == 17)
        .and_then(PhoneId::parse);
    Identity {
        model,
        firmware: Some(tokens[fw_index].to_string()),
        mac,
    }
}

/// The vendor that owns a MAC prefix.
pub fn by_oui(id: &PhoneId) -> Option<&'static VendorSpec> {
    VENDORS
        .iter()
        .copied()
        .find(|spec| spec.ouis.contains(&id.oui()))
}

/// Which vendor serves a provisioning path, and for which MAC. When two vendors use the same
/// file name, the configured phone's vendor, then the User-Agent, then the MAC prefix decide.
pub fn provision_lookup(
    path: &str,
    user_agent: Option<&str>,
    configured: impl Fn(&PhoneId) -> Option<&'static VendorSpec>,
) -> Option<(&'static VendorSpec, Option<PhoneId>)> {
    let candidates: Vec<(&'static VendorSpec, Option<PhoneId>)> = VENDORS
        .iter()
        .copied()
        .filter_map(|spec| (spec.provision_file)(path).map(|mac| (spec, mac)))
        .collect();
    if candidates.len() <= 1 {
        return candidates.into_iter().next();
    }
    let mac = candidates.iter().find_map(|(_, mac)| mac.clone());
    let chosen = mac
        .as_ref()
        .and_then(&configured)
        .or_else(|| {
            user_agent.and_then(|ua| {
                VENDORS
                    .iter()
                    .copied()
                    .find(|s| (s.recognise)(ua).is_some())
            })
        })
        .or_else(|| mac.as_ref().and_then(by_oui))?;
    candidates
        .into_iter()
        .find(|(spec, _)| spec.id == chosen.id)
}

/// A callback as the receiver decoded it.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    /// The event name from the Action URL path.
    pub event: String,
    /// Variables, `%XX`-decoded, `+` kept, unfilled `$tokens` already removed.
    pub vars: BTreeMap<String, String>,
    pub user_agent: Option<String>,
}

/// A callback turned into its normalised parts; the agent adds the phone id and time.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub event: EventKind,
    pub forward: Option<ForwardKind>,
    pub mac: Option<PhoneId>,
    pub identity: Identity,
    pub ip: Option<String>,
    pub remote: Option<String>,
    pub remote_name: Option<String>,
    pub local: Option<String>,
    pub call_id: Option<String>,
    pub line: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{vendor} has no Action URL event `{event}`")]
    UnknownEvent { vendor: &'static str, event: String },
    #[error("cannot tell which phone sent this: no MAC in the variables or the User-Agent")]
    NoMac,
}

impl VendorSpec {
    /// Turns a callback into an event, using this vendor's event table and variable names.
    pub fn parse(&self, callback: &Callback) -> Result<ParsedEvent, ParseError> {
        let spec = self
            .event(&callback.event)
            .ok_or_else(|| ParseError::UnknownEvent {
                vendor: self.name,
                event: callback.event.clone(),
            })?;
        let var = |name: Option<&str>| name.and_then(|n| callback.vars.get(n)).cloned();
        let identity = callback
            .user_agent
            .as_deref()
            .and_then(self.recognise)
            .unwrap_or_default();
        let mac = var(Some(self.vars.mac))
            .and_then(|m| PhoneId::parse(&m))
            .or_else(|| identity.mac.clone());
        let Some(mac) = mac else {
            return Err(ParseError::NoMac);
        };
        let identity = Identity {
            model: var(self.vars.model).or(identity.model),
            firmware: var(self.vars.firmware).or(identity.firmware),
            mac: Some(mac.clone()),
        };
        Ok(ParsedEvent {
            event: spec.event,
            forward: spec.forward,
            mac: Some(mac),
            identity,
            ip: var(self.vars.ip),
            remote: var(self.vars.remote).map(|r| sip_number(&r)),
            remote_name: var(self.vars.display_remote),
            local: var(self.vars.local).map(|l| sip_number(&l)),
            call_id: var(self.vars.call_id),
            line: var(self.vars.active_user),
        })
    }
}

/// `sip:+4930123456@pbx.example.com;user=phone` is `+4930123456`; a plain number stays as it is.
pub fn sip_number(value: &str) -> String {
    let trimmed = value.trim();
    let inner = match (trimmed.find('<'), trimmed.rfind('>')) {
        (Some(open), Some(close)) if open < close => &trimmed[open + 1..close],
        _ => trimmed,
    };
    let lower = inner.to_ascii_lowercase();
    let without_scheme = ["sips:", "sip:", "tel:"]
        .iter()
        .find(|scheme| lower.starts_with(*scheme))
        .map_or(inner, |scheme| &inner[scheme.len()..]);
    let user = without_scheme
        .split(['@', ';'])
        .next()
        .unwrap_or(without_scheme);
    user.to_string()
}

/// The capability table as JSON, for `GET /api/vendors` and the Manager's buttons.
#[derive(Debug, Serialize)]
pub struct VendorDoc {
    pub id: &'static str,
    pub name: &'static str,
    pub commands: Vec<CommandDoc>,
    pub events: Vec<EventKind>,
}

#[derive(Debug, Serialize)]
pub struct CommandDoc {
    pub name: &'static str,
    pub arg: crate::model::ArgKind,
    pub description: &'static str,
    pub confirm: bool,
}

pub fn docs() -> Vec<VendorDoc> {
    VENDORS
        .iter()
        .map(|spec| {
            let mut events: Vec<EventKind> = Vec::new();
            for event in spec.events {
                if !events.contains(&event.event) {
                    events.push(event.event);
                }
            }
            VendorDoc {
                id: spec.id,
                name: spec.name,
                commands: CommandKind::phone_commands()
                    .filter(|kind| spec.supports(*kind))
                    .map(|kind| CommandDoc {
                        name: kind.name(),
                        arg: kind.arg(),
                        description: kind.description(),
                        confirm: kind.needs_confirmation(),
                    })
                    .collect(),
                events,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_per_vendors_md() {
        assert_eq!(encode_query_value("+49301234"), "%2B49301234");
        assert_eq!(encode_query_value("*21#"), "*21%23");
        assert_eq!(
            encode_query_value("1001@pbx.example.com"),
            "1001@pbx.example.com"
        );
        assert_eq!(encode_query_value("a&b;c d"), "a%26b%3Bc%20d");
        assert_eq!(encode_query_value("é"), "%C3%A9");
    }

    #[test]
    fn sip_uris_reduce_to_numbers() {
        assert_eq!(sip_number("sip:+4930123456@pbx.example.com"), "+4930123456");
        assert_eq!(sip_number("+4930123456"), "+4930123456");
        assert_eq!(sip_number("1001@10.0.0.1"), "1001");
        assert_eq!(sip_number("<sip:1001@pbx;user=phone>"), "1001");
    }

    #[test]
    fn plain_user_agents() {
        let id = parse_plain_user_agent("Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37", "Yealink");
        assert_eq!(id.model.as_deref(), Some("SIP-T46G"));
        assert_eq!(id.firmware.as_deref(), Some("28.72.0.1"));
        assert_eq!(id.mac.unwrap().as_str(), "0015654aa937");
        let id = parse_plain_user_agent(
            "Yealink SIP VP-T49G 51.80.0.10 00:15:65:9b:5a:44",
            "Yealink",
        );
        assert_eq!(id.model.as_deref(), Some("SIP VP-T49G"));
        let id =
            parse_plain_user_agent("yealink SIP-T38G  38.70.0.125 00:15:65:00:00:01", "Yealink");
        assert_eq!(id.model.as_deref(), Some("SIP-T38G"));
        let id = parse_plain_user_agent("W52P 25.30.0.2 00:15:65:44:b3:7c", "Yealink");
        assert_eq!(id.model.as_deref(), Some("W52P"));
        assert_eq!(id.mac.unwrap().as_str(), "00156544b37c");
        let id = parse_plain_user_agent("Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0", "Yealink");
        assert_eq!(id.model.as_deref(), Some("T46G"));
        assert_eq!(id.firmware.as_deref(), Some("28.71.0.81"));
        assert!(id.mac.is_none());
        let id = parse_plain_user_agent("Fanvil X6U Pro 0.0.10 0c383e2cd782", "Fanvil");
        assert_eq!(id.model.as_deref(), Some("X6U Pro"));
        assert_eq!(id.mac.unwrap().as_str(), "0c383e2cd782");
    }
}
