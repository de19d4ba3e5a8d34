//! The `[[phone]]` options only some vendors read, declared by each vendor in its spec.

use super::VendorSpec;

/// A `[[phone]]` option that only some vendors read: a quirk of theirs, not something every
/// phone has. A vendor lists those it reads in [`VendorSpec::options`]; config refuses a phone
/// that sets one its vendor does not read, and a builder finds only its vendor's in
/// [`Target::options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneOption {
    /// `legacy_api = true`: the phone runs older firmware that wants the vendor's older API form.
    LegacyApi,
    /// `dnd_key = "MPK1"`: the key programmed as DND on the phone, for a vendor whose only DND
    /// control is such a key.
    DndKey,
}

impl PhoneOption {
    pub const ALL: &'static [PhoneOption] = &[PhoneOption::LegacyApi, PhoneOption::DndKey];

    /// Its key in a `[[phone]]` entry.
    pub fn key(self) -> &'static str {
        match self {
            PhoneOption::LegacyApi => "legacy_api",
            PhoneOption::DndKey => "dnd_key",
        }
    }
}

/// An option a vendor reads, and what it does for that vendor's phones (for the docs).
#[derive(Debug)]
pub struct OptionSpec {
    pub option: PhoneOption,
    pub doc: &'static str,
}

/// One phone's values of the [`PhoneOption`]s; the default is "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneOptions {
    /// [`PhoneOption::LegacyApi`].
    pub legacy_api: bool,
    /// [`PhoneOption::DndKey`].
    pub dnd_key: Option<String>,
}

impl PhoneOptions {
    /// Whether `option` is set to something other than its default.
    pub fn is_set(&self, option: PhoneOption) -> bool {
        match option {
            PhoneOption::LegacyApi => self.legacy_api,
            PhoneOption::DndKey => self.dnd_key.is_some(),
        }
    }

    /// Only the options `spec` reads, the others at their defaults: what its builder gets.
    pub fn read_by(self, spec: &VendorSpec) -> PhoneOptions {
        let PhoneOptions {
            legacy_api,
            dnd_key,
        } = self;
        PhoneOptions {
            legacy_api: legacy_api && spec.reads(PhoneOption::LegacyApi),
            dnd_key: dnd_key.filter(|_| spec.reads(PhoneOption::DndKey)),
        }
    }
}
