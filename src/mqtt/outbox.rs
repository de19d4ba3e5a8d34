//! The outbox: what a session has accepted for the broker and not yet seen acknowledged.
//!
//! Publishers never wait for the broker: a message goes in here and the caller goes on (a phone
//! gets its 200 at once). The session task takes messages out while it is connected and keeps
//! them until the broker's PUBACK (`mqtt::run`). The outbox is bounded in messages and bytes
//! (`[mqtt] outbox_messages`, `outbox_bytes`); past the bound the policy is:
//!
//! 1. the oldest **event** goes (a phone's or the bridge's `event` topic);
//! 2. with no event left, the oldest other non-retained message (a command's result);
//! 3. with neither, the oldest **retained** message, and the session marks its retained state
//!    for a rebuild: the owner republishes all of it from its registry on the next connect.
//!
//! A retained message replaces the one queued for the same topic (only the last value of a
//! retained topic matters), so the retained part is bounded by the topics, not by the changes.
//! Every drop is counted by class.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

/// What a message is, for the drop policy: the order of the variants is the order they are
/// dropped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A phone's or the bridge's event: dropped first.
    Event,
    /// Any other non-retained message (results, commands from the web side).
    Message,
    /// A retained message: rebuilt on reconnect by its owner.
    State,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Event, Class::Message, Class::State];

    /// Its place in [`Class::ALL`], for counters kept by class.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Event => "event",
            Class::Message => "message",
            Class::State => "state",
        }
    }
}

/// One message on its way to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
    pub class: Class,
}

impl Entry {
    pub fn new(topic: String, payload: Bytes, retain: bool, class: Class) -> Entry {
        let class = if retain { Class::State } else { class };
        Entry {
            topic,
            payload,
            retain,
            class,
        }
    }

    /// What the entry counts against `outbox_bytes`: payload and topic.
    pub fn size(&self) -> usize {
        self.payload.len() + self.topic.len()
    }
}

/// The outbox's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub messages: usize,
    pub bytes: usize,
}

/// What became of a message put in.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// It replaced the queued value of the same retained topic.
    pub replaced: bool,
    /// Messages dropped to make room, by class (the new message itself among them when it is
    /// larger than the whole bound).
    pub dropped: Vec<Class>,
}

/// The queue. Entries are numbered in arrival order; those handed back after a lost session
/// keep their numbers, so they go out again before anything newer.
#[derive(Debug)]
pub struct Outbox {
    bounds: Bounds,
    entries: BTreeMap<u64, Entry>,
    /// Entry numbers by class: the oldest of a class is the first.
    by_class: HashMap<Class, BTreeSet<u64>>,
    /// The queued entry of each retained topic.
    retained: HashMap<String, u64>,
    bytes: usize,
    next: u64,
    /// A retained message was dropped: the owner's retained state must be rebuilt.
    lost_state: bool,
}

impl Outbox {
    pub fn new(bounds: Bounds) -> Outbox {
        Outbox {
            bounds,
            entries: BTreeMap::new(),
            by_class: Class::ALL
                .into_iter()
                .map(|class| (class, BTreeSet::new()))
                .collect(),
            retained: HashMap::new(),
            bytes: 0,
            next: 0,
            lost_state: false,
        }
    }

    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Puts a message in, at the back.
    pub fn push(&mut self, entry: Entry) -> Pushed {
        let number = self.next;
        self.next += 1;
        self.insert(number, entry)
    }

    /// Puts messages taken out earlier back in, under their old numbers (so in front of
    /// anything that came since), as when a session was lost before they were acknowledged.
    /// A retained topic queued meanwhile keeps its newer value.
    pub fn put_back(&mut self, entries: impl IntoIterator<Item = (u64, Entry)>) -> Pushed {
        let mut pushed = Pushed::default();
        for (number, entry) in entries {
            if entry.retain && self.retained.contains_key(&entry.topic) {
                continue;
            }
            let more = self.insert(number, entry);
            pushed.dropped.extend(more.dropped);
        }
        pushed
    }

    fn insert(&mut self, number: u64, entry: Entry) -> Pushed {
        let mut pushed = Pushed::default();
        if entry.retain {
            if let Some(&queued) = self.retained.get(&entry.topic) {
                // The newer value takes the older one's place in the line.
                let old = self
                    .entries
                    .get_mut(&queued)
                    .expect("a retained topic's entry is queued");
                self.bytes = self.bytes - old.size() + entry.size();
                *old = entry;
                pushed.replaced = true;
                self.enforce(&mut pushed, None);
                return pushed;
            }
            self.retained.insert(entry.topic.clone(), number);
        }
        self.bytes += entry.size();
        self.by_class
            .get_mut(&entry.class)
            .expect("every class has a set")
            .insert(number);
        self.entries.insert(number, entry);
        self.enforce(&mut pushed, Some(number));
        pushed
    }

    /// Drops by the policy until the bounds hold. `newest` goes last of its class: a new event
    /// past the bound pushes out an older one, not itself.
    fn enforce(&mut self, pushed: &mut Pushed, newest: Option<u64>) {
        while self.entries.len() > self.bounds.messages || self.bytes > self.bounds.bytes {
            let victim = Class::ALL.into_iter().find_map(|class| {
                let numbers = &self.by_class[&class];
                numbers
                    .iter()
                    .find(|&&n| Some(n) != newest)
                    .copied()
                    .map(|n| (n, class))
            });
            // Only the newest is left and it is too big on its own: it goes.
            let (number, class) = match (victim, newest) {
                (Some(victim), _) => victim,
                (None, Some(n)) => (n, self.entries[&n].class),
                (None, None) => return,
            };
            self.remove(number);
            if class == Class::State {
                self.lost_state = true;
            }
            pushed.dropped.push(class);
        }
    }

    fn remove(&mut self, number: u64) -> Option<Entry> {
        let entry = self.entries.remove(&number)?;
        self.bytes -= entry.size();
        self.by_class
            .get_mut(&entry.class)
            .expect("every class has a set")
            .remove(&number);
        if entry.retain {
            self.retained.remove(&entry.topic);
        }
        Some(entry)
    }

    /// Takes the oldest message out, with its number.
    pub fn pop(&mut self) -> Option<(u64, Entry)> {
        let number = *self.entries.keys().next()?;
        self.remove(number).map(|entry| (number, entry))
    }

    /// Everything left, oldest first (at the end of a session, to keep it on disk).
    pub fn drain(&mut self) -> Vec<(u64, Entry)> {
        let mut all = Vec::with_capacity(self.len());
        while let Some(next) = self.pop() {
            all.push(next);
        }
        all
    }

    /// Whether a retained message was dropped since the last call.
    pub fn take_lost_state(&mut self) -> bool {
        std::mem::take(&mut self.lost_state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> Entry {
        Entry::new(
            format!("p/{n}/event"),
            Bytes::from(vec![b'x'; 10]),
            false,
            Class::Event,
        )
    }

    fn state(topic: &str, value: &str) -> Entry {
        Entry::new(
            topic.to_string(),
            Bytes::from(value.to_string()),
            true,
            Class::State,
        )
    }

    fn result(n: usize) -> Entry {
        Entry::new(
            format!("p/{n}/result"),
            Bytes::from_static(b"ok"),
            false,
            Class::Message,
        )
    }

    #[test]
    fn past_the_bound_the_oldest_event_goes_never_a_result_or_state_first() {
        let mut outbox = Outbox::new(Bounds {
            messages: 4,
            bytes: 1 << 20,
        });
        outbox.push(state("p/1/state", "idle"));
        outbox.push(event(1));
        outbox.push(result(1));
        outbox.push(event(2));
        let pushed = outbox.push(event(3));
        assert_eq!(pushed.dropped, vec![Class::Event]);
        let left: Vec<String> = outbox.drain().into_iter().map(|(_, e)| e.topic).collect();
        assert_eq!(left, ["p/1/state", "p/1/result", "p/2/event", "p/3/event"]);
        assert!(!outbox.take_lost_state());
    }

    #[test]
    fn with_no_event_left_results_then_state_go_and_state_is_marked_for_a_rebuild() {
        let mut outbox = Outbox::new(Bounds {
            messages: 2,
            bytes: 1 << 20,
        });
        outbox.push(state("p/1/state", "idle"));
        outbox.push(result(1));
        assert_eq!(outbox.push(result(2)).dropped, vec![Class::Message]);
        assert!(!outbox.take_lost_state());
        // Only the new result is non-retained: the state goes.
        let mut outbox = Outbox::new(Bounds {
            messages: 1,
            bytes: 1 << 20,
        });
        outbox.push(state("p/1/state", "idle"));
        assert_eq!(outbox.push(result(3)).dropped, vec![Class::State]);
        assert!(outbox.take_lost_state());
        assert!(!outbox.take_lost_state());
    }

    #[test]
    fn a_retained_topic_keeps_its_place_and_only_its_last_value() {
        let mut outbox = Outbox::new(Bounds {
            messages: 10,
            bytes: 1 << 20,
        });
        outbox.push(state("p/1/state", "idle"));
        outbox.push(event(1));
        let pushed = outbox.push(state("p/1/state", "talking"));
        assert!(pushed.replaced);
        assert_eq!(outbox.len(), 2);
        assert_eq!(
            outbox.bytes(),
            "p/1/state".len() + 7 + "p/1/event".len() + 10
        );
        let (_, first) = outbox.pop().unwrap();
        assert_eq!(first.payload, Bytes::from_static(b"talking"));
    }

    #[test]
    fn the_byte_bound_holds_too_and_a_message_larger_than_it_is_dropped() {
        let mut outbox = Outbox::new(Bounds {
            messages: 100,
            bytes: 50,
        });
        for n in 0..5 {
            outbox.push(event(n));
        }
        assert!(outbox.bytes() <= 50, "{}", outbox.bytes());
        assert_eq!(outbox.len(), 2);
        let huge = Entry::new(
            "p/big/event".into(),
            Bytes::from(vec![0; 100]),
            false,
            Class::Event,
        );
        let pushed = outbox.push(huge);
        assert_eq!(pushed.dropped.len(), 3, "{pushed:?}");
        assert!(outbox.bytes() <= 50);
    }

    #[test]
    fn entries_put_back_go_out_before_newer_ones_and_yield_to_newer_retained_values() {
        let mut outbox = Outbox::new(Bounds {
            messages: 10,
            bytes: 1 << 20,
        });
        outbox.push(event(1));
        outbox.push(state("p/1/state", "idle"));
        let taken: Vec<_> = std::iter::from_fn(|| outbox.pop()).collect();
        outbox.push(event(2));
        outbox.push(state("p/1/state", "talking"));
        outbox.put_back(taken);
        let left: Vec<(String, Bytes)> = outbox
            .drain()
            .into_iter()
            .map(|(_, e)| (e.topic, e.payload))
            .collect();
        assert_eq!(
            left,
            [
                ("p/1/event".to_string(), Bytes::from(vec![b'x'; 10])),
                ("p/2/event".to_string(), Bytes::from(vec![b'x'; 10])),
                ("p/1/state".to_string(), Bytes::from_static(b"talking")),
            ]
        );
    }
}
